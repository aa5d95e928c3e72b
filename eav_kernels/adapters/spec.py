"""``AdapterSpec`` for diffusers transformers: the engine's public spec (eav_kernels/engine/spec.py),
re-exported here where the diffusers specs (``models.py``) have always found it.

A spec is data: adding a diffusers model costs one spec in ``models.py`` and one test, never a
copied attention processor. What a targeted layer must look like: the engine's spec docstring.
"""

from __future__ import annotations

from ..engine.spec import AdapterSpec, TextPosition, find_spec

__all__ = ["AdapterSpec", "TextPosition", "find_spec"]
