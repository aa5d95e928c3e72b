"""Loads the compiled extension ``eav_kernels._C`` (ops ``torch.ops.eav.*``) and registers the
fake (meta) implementations that let ``torch.compile`` trace the ops.

The package stays importable without the extension (the reference backend still works); the
reason it could not be loaded is kept and reported by the backends that need it.
"""

from __future__ import annotations

import types

import torch

__all__ = ["compiled_extension", "extension_import_error"]

try:
    from . import _C as _compiled
except ImportError as error:  # not built, or built against another torch
    _compiled = None
    _import_error: ImportError | None = error
else:
    _import_error = None

    @torch.library.register_fake("eav::cross_frame_intensity")
    def _cross_frame_intensity_fake(
        query: torch.Tensor,  # [B, H, F*S, D]
        key: torch.Tensor,  # [B, Hk, F*S, D]
        num_frames: int,
        scale: float,
    ) -> torch.Tensor:  # [B] float32
        # The same preconditions as the C++ entry (tensor_problem.h), so that a traced call fails
        # the way an eager one does, and a device mismatch that dispatches here (meta + cpu)
        # is an error rather than a silent meta result.
        from .validation import check_query_key, check_scale

        check_query_key(query, key, num_frames)
        check_scale(scale)
        return query.new_empty((query.shape[0],), dtype=torch.float32)


def compiled_extension() -> types.ModuleType | None:
    """The ``eav_kernels._C`` module, or None when it is not built."""
    return _compiled


def extension_import_error() -> str:
    """Why ``eav_kernels._C`` could not be imported ('' when it was)."""
    return "" if _import_error is None else f"{type(_import_error).__name__}: {_import_error}"
