"""``AdapterSpec`` for diffusers video models: the engine's public spec (eav_kernels/engine/spec.py),
re-exported here where the diffusers specs (``models.py``) have always found it.

A spec is data: adding a diffusers model costs one spec in ``models.py`` and one test, never a
copied attention processor. What a targeted layer must look like: the engine's spec docstring.
Models where the method has no clear meaning, or that the machinery cannot reach, are refused by
name with the reason (``models.REFUSED_MODELS``): ``find_spec`` raises ``TypeError`` quoting it.
"""

from __future__ import annotations

from ..engine.spec import AdapterSpec, ConditioningSide, TextPosition, find_spec

__all__ = ["AdapterSpec", "ConditioningSide", "TextPosition", "find_spec"]
