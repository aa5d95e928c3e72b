"""Loads the compiled extension ``eav_kernels._C`` (it registers the ops ``torch.ops.eav.*``).

The package stays importable without the extension (the reference backend still works); the
reason it could not be loaded is kept and reported by the backends that need it. The ops' typed
wrappers and their fakes are in ``ops.py``.
"""

from __future__ import annotations

import types

from ._abi_check import load_compiled_extension

__all__ = ["compiled_extension", "extension_import_error"]

try:
    _compiled = load_compiled_extension()
except ImportError as error:  # not built, or built for a torch other than the running one
    _compiled = None
    _import_error: ImportError | None = error
else:
    _import_error = None


def compiled_extension() -> types.ModuleType | None:
    """The ``eav_kernels._C`` module, or None when it is not built."""
    return _compiled


def extension_import_error() -> str:
    """Why ``eav_kernels._C`` could not be imported ('' when it was)."""
    return "" if _import_error is None else f"{type(_import_error).__name__}: {_import_error}"
