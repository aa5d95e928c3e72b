"""Old keyword spellings that keep working: ``per_batch`` (now ``per_sample``) and ``weight``
(now ``enhance_weight``). One name per concept; the old one warns and means the same."""

from __future__ import annotations

import warnings
from typing import Any

import torch

__all__ = ["renamed_keyword"]


def renamed_keyword(old_name: str, old_value: Any, new_name: str, new_value: Any, default: Any, *,
                    stacklevel: int = 3) -> Any:
    """The value meant by a call that may spell the keyword ``new_name`` the old way, ``old_name``.

    ``old_value`` is None when the old spelling was not used; else a ``DeprecationWarning`` names
    the new one (not while ``torch.compile`` traces: a warning would break the graph), and giving
    both with different values is a ``TypeError``. ``stacklevel``: the user's frame, counted from
    this function's (3: the caller of the function that calls this one).
    """
    if old_value is None:
        return new_value
    if not torch.compiler.is_compiling():
        warnings.warn(f"'{old_name}' is deprecated; use '{new_name}'", DeprecationWarning,
                      stacklevel=stacklevel)
    if new_value != default and new_value != old_value:
        raise TypeError(f"got both {new_name}={new_value!r} and its old spelling {old_name}={old_value!r}")
    return old_value
