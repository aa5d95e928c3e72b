"""What the engine sees of an attention computation: one ``AttentionCall`` per call, read from
the arguments of whatever computes it.

``AttentionCapture`` (capture.py) is a ``TorchFunctionMode`` live during one layer's forward; it
sees every torch function and torch op the layer calls, and the Python attention functions that
taps.py makes visible. For the ones listed here a reader turns ``(args, kwargs)`` into an
``AttentionCall``: q and k exactly as handed to attention (after QK-norm and RoPE) as
``[B, H, N, D]`` views, never copies, with the attention's own scale, and where the output sits
in the call's result.

=================================================  ========  ==================================
what computes attention                            layout    seen as
=================================================  ========  ==================================
``torch.nn.functional.scaled_dot_product_attention``  BHND   a torch function
aten ``_scaled_dot_product_{flash,efficient,cudnn}_attention`` (+ ``_for_cpu``)  BHND  torch ops
diffusers attention-dispatcher backends (all)      BNHD      tapped registry entries (taps.py)
flash-attn ``flash_attn_func`` / ``_varlen_func``  BNHD/THD  its ``torch.library`` ops
flash-attn 3 (Hopper) ``flash_attn_3::_flash_attn_forward``  BNHD/THD  its op
``torch.nn.attention.flex_attention``              BHND      a tapped function (taps.py)
xformers ``memory_efficient_attention``           BMHK      a tapped function (taps.py)
SageAttention ``sageattn``                         HND/NHD   a tapped function (taps.py)
hand-written ``softmax(q kᵀ)``                     any       the softmax, by its output map
=================================================  ========  ==================================

Packed variable-length calls (flash-attn varlen, xformers block-diagonal biases) carry one
sequence per batch element: ``sequences`` holds their token ranges. A flex_attention call carries
its ``block_mask`` and any ``score_mod``: the capture measures it only where the logits are
``scale * q kᵀ`` over the whole video square (no score_mod, a mask full there: flex_mask.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

AttentionReader = Callable[[tuple, dict], "AttentionCall | None"]


@dataclass
class AttentionCall:
    """One attention computation, read from its arguments.

    Attributes:
        query: ``[B, H, N, D]`` view of q as handed to attention (``None`` for a softmax map).
        key: ``[B, Hk, N, D]`` view of k, ``H % Hk == 0``.
        scale: the attention's logit scale (``None``: ``D ** -0.5``).
        token_dim: the token axis of the attention output inside the call's result.
        output_index: ``None`` when the result is the output tensor, else its index in the
            result tuple.
        sequences: for packed variable-length calls (``B == 1``), the token range of each
            sequence, one per batch element; ``None`` for dense calls.
        from_probabilities: the call is a softmax whose result is the attention map
            ``[..., N, N]``; the CFI is read from that map (attention_map.py).
        sdpa_arguments: for an ``F.scaled_dot_product_attention`` call, all its arguments by
            name: the capture hands such a call to the dispatch core, which computes its output
            and CFI together (the fused temporal kernel where a backend has one).
        block_mask: a flex_attention call's ``BlockMask`` (``None``: none, or not flex); the
            capture measures the call only where it is full over the video square (flex_mask.py).
        score_mod: a flex_attention call's ``score_mod`` other than the identity (``None``:
            plain ``scale * q kᵀ`` logits); the capture refuses a call that has one.
    """

    query: torch.Tensor | None
    key: torch.Tensor | None
    scale: float | None
    token_dim: int
    output_index: int | None = None
    sequences: list[slice] | None = None
    from_probabilities: bool = False
    sdpa_arguments: dict[str, Any] | None = None
    block_mask: Any = None
    score_mod: Callable | None = None

    def output(self, result: Any) -> torch.Tensor:
        """The attention output (or map) inside the call's result."""
        return result if self.output_index is None else result[self.output_index]

    def with_output(self, result: Any, output: torch.Tensor) -> Any:
        """The call's result with its output replaced by ``output``."""
        if self.output_index is None:
            return output
        parts = list(result)
        parts[self.output_index] = output
        return type(result)(parts) if isinstance(result, tuple) else parts


def _argument(args: Sequence, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    """The argument at position ``index`` or keyword ``name``."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _heads_first(tensor: torch.Tensor) -> torch.Tensor:  # [B, N, H, D] -> [B, H, N, D] view
    return tensor.transpose(1, 2)


_SDPA_PARAMETERS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
_SDPA_DEFAULTS = {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None, "enable_gqa": False}


def read_sdpa(args: tuple, kwargs: dict) -> AttentionCall:
    """``F.scaled_dot_product_attention(query, key, value, attn_mask, dropout_p, is_causal,
    scale, enable_gqa)`` on ``[B, H, N, D]``."""
    call = dict(_SDPA_DEFAULTS, **dict(zip(_SDPA_PARAMETERS, args)), **kwargs)
    return AttentionCall(call["query"], call["key"], call["scale"], token_dim=2, sdpa_arguments=call)


def read_aten_attention(args: tuple, kwargs: dict) -> AttentionCall:
    """aten ``_scaled_dot_product_*_attention``: ``(query, key, value, ..., *, scale)`` on
    ``[B, H, N, D]``; the result is a tuple whose first element is the output."""
    return AttentionCall(args[0], args[1], kwargs.get("scale"), token_dim=2, output_index=0)


def read_dispatcher_backend(args: tuple, kwargs: dict) -> AttentionCall:
    """A diffusers dispatcher backend, called as ``backend_fn(query=, key=, value=, ...,
    scale=, return_lse=?)`` on ``[B, N, H, D]``; returns the output, or ``(output, lse)``."""
    query, key = kwargs["query"], kwargs["key"]
    return AttentionCall(_heads_first(query), _heads_first(key), kwargs.get("scale"), token_dim=1,
                         output_index=0 if kwargs.get("return_lse") else None)


def flash_attn_reader(op: torch._ops.OpOverloadPacket) -> AttentionReader | None:
    """flash-attn's forward ops (``flash_attn::_flash_attn_forward`` and ``_varlen_forward``,
    ``flash_attn_3::_flash_attn_forward``): q, k first, ``[B, N, H, D]``, or packed
    ``[total, H, D]`` with ``cu_seqlens_q``; ``softmax_scale``; the result's first element is
    the output. Argument positions come from the op's schema (they differ between versions);
    ``None`` for a version whose schema has no ``softmax_scale`` (not read rather than misread)."""
    names = [argument.name for argument in op.default._schema.arguments]
    if "softmax_scale" not in names:
        return None
    scale_index = names.index("softmax_scale")
    sequences_index = names.index("cu_seqlens_q") if "cu_seqlens_q" in names else None

    def read(args: tuple, kwargs: dict) -> AttentionCall:
        query, key = args[0], args[1]
        scale = _argument(args, kwargs, scale_index, "softmax_scale")
        cu_seqlens = None if sequences_index is None else _argument(args, kwargs, sequences_index, "cu_seqlens_q")
        if cu_seqlens is None:
            return AttentionCall(_heads_first(query), _heads_first(key), scale, token_dim=1, output_index=0)
        return _packed_call(query, key, scale, cu_seqlens.tolist(), token_dim=0, output_index=0)

    return read


def _packed_call(query: torch.Tensor,  # [total, H, D]
                 key: torch.Tensor,  # [total, Hk, D]
                 scale: float | None, starts: list[int], token_dim: int,
                 output_index: int | None) -> AttentionCall:
    """A packed variable-length call: sequence ``i`` is tokens ``starts[i]:starts[i + 1]`` of q
    and of k (self-attention: the same ranges); the output's tokens are on ``token_dim``."""
    if query.shape[0] != key.shape[0]:
        raise ValueError(
            f"packed attention with {query.shape[0]} query and {key.shape[0]} key tokens is not "
            "self-attention"
        )
    sequences = [slice(start, stop) for start, stop in zip(starts[:-1], starts[1:])]
    return AttentionCall(query.unsqueeze(0).transpose(1, 2), key.unsqueeze(0).transpose(1, 2), scale,
                         token_dim=token_dim, output_index=output_index, sequences=sequences)


def read_xformers(args: tuple, kwargs: dict) -> AttentionCall:
    """``xformers.ops.memory_efficient_attention(query, key, value, attn_bias=None, p=0.0,
    scale=None, ...)`` on ``[B, M, H, K]`` or ``[B, M, G, H, K]`` (grouped heads; keys shared
    across ``H`` as a stride-0 expand). A block-diagonal ``attn_bias`` packs variable-length
    sequences into ``B == 1``; other biases leave the video-to-video attention as it is."""
    query, key = args[0] if args else kwargs["query"], _argument(args, kwargs, 1, "key")
    bias, scale = _argument(args, kwargs, 3, "attn_bias"), _argument(args, kwargs, 5, "scale")
    if query.dim() == 5:  # [B, M, G, H, K] -> [B, M, G*H, K]; shared keys -> [B, M, G, K]
        query = query.flatten(2, 3)
        key = key[:, :, :, 0] if key.stride(3) == 0 else key.flatten(2, 3)
    starts = getattr(getattr(bias, "q_seqinfo", None), "seqstart_py", None)
    if starts is not None:
        return _packed_call(query[0], key[0], scale, list(starts), token_dim=1, output_index=None)
    return AttentionCall(_heads_first(query), _heads_first(key), scale, token_dim=1)


def read_sageattn(args: tuple, kwargs: dict) -> AttentionCall:
    """``sageattention.sageattn(q, k, v, tensor_layout="HND", is_causal=False, sm_scale=None,
    return_lse=False, ...)``: ``[B, H, N, D]`` ("HND") or ``[B, N, H, D]`` ("NHD")."""
    query, key = args[0] if args else kwargs["q"], _argument(args, kwargs, 1, "k")
    layout = _argument(args, kwargs, 3, "tensor_layout", "HND")
    if layout not in ("HND", "NHD"):
        raise ValueError(f"sageattn tensor_layout must be 'HND' or 'NHD', got {layout!r}")
    heads_first = layout == "HND"
    return AttentionCall(
        query if heads_first else _heads_first(query), key if heads_first else _heads_first(key),
        _argument(args, kwargs, 5, "sm_scale"), token_dim=2 if heads_first else 1,
        output_index=0 if _argument(args, kwargs, 6, "return_lse", False) else None,
    )


def read_flex_attention(args: tuple, kwargs: dict) -> AttentionCall:
    """``torch.nn.attention.flex_attention.flex_attention(query, key, value, score_mod=None,
    block_mask=None, scale=None, enable_gqa=False, return_lse=False, kernel_options=None, *,
    return_aux=None)`` on ``[B, H, N, D]``; returns the output, or ``(output, lse or aux)``."""
    from torch.nn.attention.flex_attention import _identity

    query, key = args[0] if args else kwargs["query"], _argument(args, kwargs, 1, "key")
    score_mod = _argument(args, kwargs, 3, "score_mod")
    with_extra = _argument(args, kwargs, 7, "return_lse", False) or kwargs.get("return_aux") is not None
    return AttentionCall(query, key, _argument(args, kwargs, 5, "scale"), token_dim=2,
                         output_index=0 if with_extra else None,
                         block_mask=_argument(args, kwargs, 4, "block_mask"),
                         score_mod=None if score_mod in (None, _identity) else score_mod)


def read_softmax(args: tuple, kwargs: dict) -> AttentionCall | None:
    """``softmax(x, dim)`` (``torch.softmax``, ``Tensor.softmax``, ``F.softmax``) over the last
    axis of a square ``[..., N, N]`` map: hand-written attention. Its result is the attention
    map; anything else (another axis, a non-square tensor) is not attention and is ignored."""
    scores = args[0] if args else kwargs.get("input")
    dim = _argument(args, kwargs, 1, "dim")
    if not isinstance(scores, torch.Tensor) or scores.dim() < 3 or dim is None:
        return None
    if dim % scores.dim() != scores.dim() - 1 or scores.shape[-1] != scores.shape[-2]:
        return None
    return AttentionCall(None, None, None, token_dim=scores.dim() - 2, from_probabilities=True)


_ATEN_ATTENTION = ("_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_for_cpu",
                   "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_efficient_attention")
_FLASH_ATTN_OPS = (("flash_attn", "_flash_attn_forward"), ("flash_attn", "_flash_attn_varlen_forward"),
                   ("flash_attn_3", "_flash_attn_forward"))
_SOFTMAXES = (torch.softmax, torch.Tensor.softmax, F.softmax, torch.special.softmax)


def _registered_op(namespace: str, name: str) -> torch._ops.OpOverloadPacket | None:
    """``torch.ops.<namespace>.<name>`` if some loaded library registered it, else ``None``."""
    try:
        return getattr(getattr(torch.ops, namespace), name)
    except (AttributeError, RuntimeError):
        return None


def attention_readers() -> dict[Any, AttentionReader]:
    """``{callable: reader}`` for every attention torch function and op registered now (ops of
    a library imported later are found by the next call). Tapped Python functions carry their
    own reader (taps.py)."""
    readers: dict[Any, AttentionReader] = {F.scaled_dot_product_attention: read_sdpa}
    for name in _ATEN_ATTENTION:
        op = _registered_op("aten", name)
        if op is not None:
            readers[op] = readers[op.default] = read_aten_attention
    for namespace, name in _FLASH_ATTN_OPS:
        op = _registered_op(namespace, name)
        reader = None if op is None else flash_attn_reader(op)
        if reader is not None:
            readers[op] = readers[op.default] = reader
    for softmax in _SOFTMAXES:
        readers[softmax] = read_softmax
    return readers
