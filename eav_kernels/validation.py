"""Input checks shared by every public entry point: errors name what is wrong, with the numbers."""

from __future__ import annotations

import math
import numbers

import torch

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_query_key(
    query: torch.Tensor,  # [B, H, N, D]
    key: torch.Tensor,  # [B, Hk, N, D]
    num_frames: int,
    *,
    enable_gqa: bool = False,
) -> None:
    """Raises TypeError/ValueError unless (query, key, num_frames) describe a CFI problem.

    Key heads may be fewer than query heads (a divisor) only with ``enable_gqa=True``, as in
    ``F.scaled_dot_product_attention``."""
    if _plainly_valid(query, key, num_frames, enable_gqa):
        return
    check_dense_4d("query", query, "[batch, heads, tokens, head_dim]")
    check_dense_4d("key", key, "[batch, heads, tokens, head_dim]")
    for name, tensor in (("query", query), ("key", key)):
        if tensor.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be float32, float16 or bfloat16, got {tensor.dtype}")
    if query.dtype != key.dtype:
        raise TypeError(f"query ({query.dtype}) and key ({key.dtype}) must have the same dtype")
    if query.device != key.device:
        raise ValueError(f"query ({query.device}) and key ({key.device}) must be on the same device")
    if query.numel() == 0 or key.numel() == 0:
        raise ValueError(
            f"query {tuple(query.shape)} and key {tuple(key.shape)} must have no zero-size dimension"
        )
    if (query.shape[0], query.shape[2], query.shape[3]) != (key.shape[0], key.shape[2], key.shape[3]):
        raise ValueError(
            f"query {tuple(query.shape)} and key {tuple(key.shape)} must agree in batch, tokens "
            "and head_dim"
        )
    heads, kv_heads = query.shape[1], key.shape[1]
    if heads != kv_heads and not enable_gqa:
        raise ValueError(
            f"query heads ({heads}) differ from key heads ({kv_heads}); pass enable_gqa=True"
        )
    if heads % kv_heads != 0:
        raise ValueError(f"query heads ({heads}) must be a multiple of key heads ({kv_heads})")
    check_num_frames(num_frames, query.shape[2])


def _plainly_valid(
    query: torch.Tensor,  # [B, H, N, D]
    key: torch.Tensor,  # [B, Hk, N, D]
    num_frames: int,
    enable_gqa: bool,
) -> bool:
    """True for a valid, plain call, decided with few attribute reads (this runs on every call);
    False sends the call through the checks below, which name what is wrong (or pass: tensor
    subclasses and int subclasses always take that path)."""
    if type(query) is not torch.Tensor or type(key) is not torch.Tensor or type(num_frames) is not int:
        return False
    try:
        batch, heads, tokens, head_dim = query.shape
        key_batch, kv_heads, key_tokens, key_head_dim = key.shape
    except ValueError:  # not 4-d
        return False
    dtype = query.dtype
    return (
        query.layout is torch.strided and key.layout is torch.strided
        and (dtype is torch.float32 or dtype is torch.bfloat16 or dtype is torch.float16)
        and key.dtype is dtype
        and query.device == key.device
        and batch == key_batch and tokens == key_tokens and head_dim == key_head_dim
        and batch * heads * tokens * head_dim * kv_heads != 0
        and (heads == kv_heads or (enable_gqa and heads % kv_heads == 0))
        and num_frames >= 1 and tokens % num_frames == 0
    )


def check_temporal_attention(
    query: torch.Tensor,  # [N_seq, H, F, D]
    key: torch.Tensor,  # [N_seq, Hk, F, D]
    value: torch.Tensor,  # [N_seq, Hk, F, Dv]
) -> None:
    """Raises TypeError/ValueError unless (query, key, value) are a batch of N_seq sequences of F
    frames for temporal attention (the checks of ``temporal_attention_with_cfi``)."""
    check_query_key(query, key, num_frames=1, enable_gqa=True)  # a sequence's tokens are its frames
    check_dense_4d("value", value, "[sequences, kv_heads, frames, value_dim]")
    if value.dtype != query.dtype:
        raise TypeError(f"value ({value.dtype}) must have the dtype of query and key ({query.dtype})")
    if value.device != query.device:
        raise ValueError(f"value ({value.device}) must be on the device of query and key ({query.device})")
    if value.shape[:3] != key.shape[:3] or value.shape[3] == 0:
        raise ValueError(
            f"value {tuple(value.shape)} must be [sequences, kv_heads, frames, value_dim] with the "
            f"first three of key {tuple(key.shape)}"
        )


def check_dense_4d(name: str, tensor: torch.Tensor, layout: str) -> None:
    """``tensor`` is a dense (strided) 4-d torch.Tensor laid out as ``layout`` (for the message)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() != 4:
        raise ValueError(f"{name} must be {layout}, got {tensor.dim()} dims {tuple(tensor.shape)}")
    if tensor.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {tensor.layout}")


def check_scale(scale: float | None) -> None:
    """``scale`` is None (``head_dim ** -0.5``) or a finite real number."""
    if scale is None:
        return
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale must be a float or None, got {type(scale).__name__}")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number, got {scale}")


def check_enhance_weight(enhance_weight: float) -> None:
    """``enhance_weight`` is not NaN nor infinite (either would make every score NaN or inf)."""
    if type(enhance_weight) is float or isinstance(enhance_weight, numbers.Real):
        if not math.isfinite(enhance_weight):
            raise ValueError(f"enhance_weight must be a finite number, got {enhance_weight}")


def check_num_frames(num_frames: int, video_tokens: int) -> None:
    """``num_frames`` is a positive int that divides the ``video_tokens`` count."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int):
        raise TypeError(f"num_frames must be an int, got {type(num_frames).__name__}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if video_tokens % num_frames != 0:
        raise ValueError(
            f"video tokens ({video_tokens}) not divisible by num_frames ({num_frames})"
        )


def resolve_video_tokens(video_tokens: slice | None, tokens: int) -> tuple[int, int]:
    """(start, length) of the video tokens among ``tokens``; ``None`` means all of them.

    Negative bounds count from the end, as in Python (``slice(-4096, None)``: the last 4096).
    """
    if video_tokens is None:
        return 0, tokens
    if not isinstance(video_tokens, slice):
        raise TypeError(f"video_tokens must be a slice or None, got {type(video_tokens).__name__}")
    if video_tokens.step not in (None, 1):
        raise ValueError(f"video_tokens must be contiguous (step 1), got step {video_tokens.step}")
    start = 0 if video_tokens.start is None else video_tokens.start
    stop = tokens if video_tokens.stop is None else video_tokens.stop
    start, stop = (start + tokens if start < 0 else start), (stop + tokens if stop < 0 else stop)
    if not (0 <= start < stop <= tokens):
        raise ValueError(
            f"video_tokens {start}:{stop} must be a non-empty range within the {tokens} tokens"
        )
    return start, stop - start
