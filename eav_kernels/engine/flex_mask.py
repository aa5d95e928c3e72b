"""Whether a flex_attention ``BlockMask`` lets the video rows attend every video key.

The kernels measure the CFI from q and k alone: the softmax over the ``F`` frames of one spatial
position, every frame seeing every frame. A flex call whose block mask hides some video key from
some video query computes another softmax, which the kernels cannot reproduce; the capture refuses
such a call unless the mask is provably full over the video square (``rows x rows``).

The block lists decide "full" as compiled flex reads them: a block listed in ``full_kv_indices``
is attended whole (its ``mask_mod`` is not evaluated), a block listed in ``kv_indices`` only where
``mask_mod`` is true, an unlisted block not at all. So the proof reads the block lists and
evaluates ``mask_mod`` only on the partial blocks inside the video square, for the call's own batch
and head indices: cheap for the usual mask (full blocks with partial edges). Eager flex evaluates
``mask_mod`` in full blocks too; the two agree for every mask whose full blocks are true
throughout, as ``create_block_mask`` builds them (a hand-built mask contradicting its own
``mask_mod`` is read the compiled way).
"""

from __future__ import annotations

import torch
from torch.nn.attention.flex_attention import BlockMask


@torch.compiler.disable  # reads block lists and mask values on the host
def video_square_hole(block_mask: BlockMask, rows: slice, batch_size: int, heads: int) -> str | None:
    """``None`` when ``block_mask`` attends every ``(query, key)`` of ``rows x rows`` for every
    batch element and query head, else a sentence locating a masked pair.

    ``rows``: the video tokens (``start``, ``stop`` set), the same range of the query and key
    sequences (self-attention); ``batch_size``, ``heads``: the call's ``B`` and query ``H``.
    """
    q_block, kv_block = block_mask.BLOCK_SIZE
    listed = block_mask.to_dense().bool()  # [Bm, Hm, QB, KB], Bm in (1, B), Hm in (1, H)
    full = torch.zeros_like(listed) if block_mask.full_kv_num_blocks is None else _listed_blocks(
        block_mask.full_kv_num_blocks, block_mask.full_kv_indices, listed.shape[-1])
    first_kv, last_kv = rows.start // kv_block, (rows.stop - 1) // kv_block
    video_kv_blocks = slice(first_kv, last_kv + 1)
    device = listed.device
    batch = torch.arange(batch_size, device=device).view(-1, 1, 1, 1)  # [B, 1, 1, 1]
    head = torch.arange(heads, device=device).view(1, -1, 1, 1)  # [1, H, 1, 1]
    for query_block in range(rows.start // q_block, (rows.stop - 1) // q_block + 1):
        unlisted = ~listed[:, :, query_block, video_kv_blocks]  # [Bm, Hm, J]
        if bool(unlisted.any()):
            b, h, j = unlisted.nonzero()[0].tolist()
            return (f"query block {query_block} (batch {b}, head {h}) lists no key block {first_kv + j}, "
                    f"inside the video tokens {rows.start}..{rows.stop - 1} (blocks of {q_block} x {kv_block})")
        partial = ~full[:, :, query_block, video_kv_blocks]  # [Bm, Hm, J]
        if not bool(partial.any()):
            continue
        queries = torch.arange(max(rows.start, query_block * q_block), min(rows.stop, (query_block + 1) * q_block),
                               device=device).view(1, 1, -1, 1)  # [1, 1, M, 1]: this block's video queries
        keys = torch.arange(rows.start, rows.stop, device=device)  # [Nv]
        in_partial = partial[..., keys // kv_block - first_kv]  # [Bm, Hm, Nv]
        keys = keys[in_partial.flatten(0, 1).any(0)].view(1, 1, 1, -1)  # the partial blocks' keys only
        attended = block_mask.mask_mod(batch, head, queries, keys)  # [B, H, M, K]
        attended = attended | ~in_partial[..., keys.view(-1) - rows.start].unsqueeze(2)
        if not bool(attended.all()):
            where = (~attended.expand(batch_size, heads, -1, -1)).nonzero()[0].tolist()
            return (f"mask_mod hides key {keys.view(-1)[where[3]].item()} from query "
                    f"{queries.view(-1)[where[2]].item()} (batch {where[0]}, head {where[1]}) inside the video "
                    f"tokens {rows.start}..{rows.stop - 1}")
    return None


def _listed_blocks(
    num_blocks: torch.Tensor,  # [Bm, Hm, QB] int: how many key blocks each query block lists
    indices: torch.Tensor,  # [Bm, Hm, QB, L] int: the listed key blocks first, then padding
    key_blocks: int,  # KB: key blocks of the sequence
) -> torch.Tensor:
    """``[Bm, Hm, QB, KB]`` bool: which key blocks each query block lists (torch's own helper for
    this is private and changed its signature between releases)."""
    slots = torch.arange(indices.shape[-1], device=indices.device)  # [L]
    valid = slots < num_blocks.unsqueeze(-1)  # [Bm, Hm, QB, L]
    columns = torch.where(valid, indices.long(), key_blocks)  # padding goes to a spare column
    listed = torch.zeros(*indices.shape[:-1], key_blocks + 1, dtype=torch.bool, device=indices.device)
    return listed.scatter_(-1, columns, True)[..., :key_blocks]
