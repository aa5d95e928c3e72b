"""Loads the compiled extension ``eav_kernels._C`` (ops ``torch.ops.eav.*``) and registers the
fake (meta) implementations that let ``torch.compile`` trace the ops.

The package stays importable without the extension (the reference backend still works); the
reason it could not be loaded is kept and reported by the backends that need it.
"""

from __future__ import annotations

import types

import torch

from ._abi_check import load_compiled_extension

__all__ = ["compiled_extension", "extension_import_error"]

try:
    _compiled = load_compiled_extension()
except ImportError as error:  # not built, or built for a torch other than the running one
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

    @torch.library.register_fake("eav::temporal_attention_with_cfi")
    def _temporal_attention_with_cfi_fake(
        query: torch.Tensor,  # [N_seq, H, F, D]
        key: torch.Tensor,  # [N_seq, Hk, F, D]
        value: torch.Tensor,  # [N_seq, Hk, F, Dv]
        scale: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # out [N_seq, H, F, Dv] (query's dtype), lse [N_seq, H, F] float32, cfi [N_seq] float32;
        # the preconditions of make_temporal_attention_problem (tensor_problem.h).
        from .validation import check_scale, check_temporal_attention

        check_temporal_attention(query, key, value)
        check_scale(scale)
        sequences, heads, frames, _ = query.shape
        out = query.new_empty((sequences, heads, frames, value.shape[3]))
        lse = query.new_empty((sequences, heads, frames), dtype=torch.float32)
        return out, lse, query.new_empty((sequences,), dtype=torch.float32)


def compiled_extension() -> types.ModuleType | None:
    """The ``eav_kernels._C`` module, or None when it is not built."""
    return _compiled


def extension_import_error() -> str:
    """Why ``eav_kernels._C`` could not be imported ('' when it was)."""
    return "" if _import_error is None else f"{type(_import_error).__name__}: {_import_error}"
