// CUDA temporal attention + cross-frame intensity in one pass (docs/design.md, contract 2).
//
// A batch of N_seq short sequences (Latte: B * S sequences of F = 16 frames): the flash forward
// (the output only) that also keeps each row's diagonal softmax mass apart, so the sequence's CFI
// comes free. q, k, v are read in place (any strides, 64-bit offsets).
//
// Work decomposition (both kernels): one thread block = one head of `sequences_per_block`
// consecutive sequences; its work items are (sequence, 16-query-frame tile) pairs, taken by the
// kWarps warps round robin. sequences_per_block = max(1, 8 / query tiles): a block covers ~128
// query rows (8 sequences at F <= 16, 4 at F <= 32, 2 at F <= 64): that is the packing of several
// short sequences into one 128-row tile, without a block-diagonal mask: each 16-row m-tile belongs
// to one sequence and is multiplied only against that sequence's own 16-key chunks, so no MMA
// work is spent on pairs of different sequences (a block-diagonal 128 x 128 tile would waste
// 7/8 of both products at F = 16). Padding costs only F -> multiple of 16 (13 -> 16, 33 -> 48).
// Blocks are ordered (sequence block, head) with the head fastest: with diffusers' [N, F, H, D]
// storage neighbouring blocks read neighbouring memory.
//
// fp16/bf16 on sm_80+ (head_dim, value_dim <= 256): tensor cores. Per item a warp holds the
// query A fragments in registers (frame_tile.cuh: one 16-byte load per row and 32 dims), loops
// key chunks of 16 frames: S = Q K^T (two n8 MMAs per 16 dims), online softmax in log2 units
// (row_softmax.cuh: running max, off-diagonal and diagonal sums kept apart), then P V: the two C
// fragments of S are exactly the A fragment of an m16n8k16 whose k is the 16 key frames
// (FlashAttention-2's register reuse), P rounded to the input dtype as FlashAttention does, V's B
// fragment loaded with 2-byte loads (4 per lane and 8 value dims), fp32 accumulators.
// fp32 (and D or Dv > 256, or below sm_80): a SIMT kernel, a warp per item, the 16 rows one after
// another, fp32 dot products with a warp all-reduce; lanes own value dims lane + 32 i.
//
// CFI: each item writes the sum of its rows' off-diagonal masses off / (off + diag) to
// partials[sequence, head, query tile] (a warp butterfly sum, fixed order); a second kernel adds
// each sequence's heads * tiles partials in double in a fixed order and divides by H F (F - 1).
// No atomics: bitwise reproducible.

#include "temporal_attention.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <type_traits>

#include "block_reduce.cuh"
#include "frame_tile.cuh"
#include "mma.cuh"
#include "row_softmax.cuh"
#include "static_switch.h"

namespace eav::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerBlock = 128;      // query rows a block aims at (8 m16 tiles)
constexpr int kReduceThreads = 128;
constexpr int kSimtValuesPerLane = 8;   // SIMT: value dims per lane per pass (256 per warp)
constexpr int64_t kMaxMmaDim = 256;

__host__ __device__ inline int64_t query_tiles_of(const TemporalAttentionProblem& p) {
  return ceil_div(p.num_frames, kFrameTile);
}

__host__ inline int64_t sequences_per_block_of(const TemporalAttentionProblem& p) {
  const int64_t per_block = kRowsPerBlock / kFrameTile / query_tiles_of(p);
  return per_block > 1 ? per_block : 1;
}

// The (sequence, head) of work item `item` of block `block`, and element pointers to the rows of
// frame 0 of q[sequence, h], k and v[sequence, h / (H / Hk)], out[sequence, h].
struct ItemLocation {
  int64_t sequence;
  int64_t head;
  int query_tile;
  const void* query;
  const void* key;
  const void* value;
  void* out;
};

template <typename Element>
__device__ inline ItemLocation locate_item(const TemporalAttentionProblem& p, int64_t block,
                                           int64_t sequences_per_block, int item, int query_tiles) {
  ItemLocation at;
  at.head = block % p.heads;
  at.sequence = block / p.heads * sequences_per_block + item / query_tiles;
  at.query_tile = item % query_tiles;
  const int64_t kv_head = at.head / (p.heads / p.kv_heads);
  at.query = static_cast<const Element*>(p.query) + at.sequence * p.query_strides[0] +
             at.head * p.query_strides[1];
  at.key = static_cast<const Element*>(p.key) + at.sequence * p.key_strides[0] +
           kv_head * p.key_strides[1];
  at.value = static_cast<const Element*>(p.value) + at.sequence * p.value_strides[0] +
             kv_head * p.value_strides[1];
  at.out = static_cast<Element*>(p.out) + at.sequence * p.out_strides[0] + at.head * p.out_strides[1];
  return at;
}

// Items of block `block`: its sequences (the last block may have fewer) x query tiles.
__device__ inline int items_of_block(const TemporalAttentionProblem& p, int64_t block,
                                     int64_t sequences_per_block, int query_tiles) {
  const int64_t first = block / p.heads * sequences_per_block;
  const int64_t sequences = p.num_sequences - first < sequences_per_block
                                ? p.num_sequences - first
                                : sequences_per_block;
  return static_cast<int>(sequences) * query_tiles;
}

template <typename Element>
__device__ __forceinline__ Element from_float(float value) {
  if constexpr (std::is_same_v<Element, __half>) {
    return __float2half_rn(value);
  } else if constexpr (std::is_same_v<Element, __nv_bfloat16>) {
    return __float2bfloat16_rn(value);
  } else {
    return value;
  }
}

// Two fp32 probabilities rounded to the input dtype and packed (first in the low half), the way
// an A / B fragment register holds two consecutive k-slots.
template <typename Element>
__device__ __forceinline__ uint32_t pack_pair(float first, float second) {
  uint32_t bits;
  if constexpr (std::is_same_v<Element, __half>) {
    const __half2 pair = __floats2half2_rn(first, second);
    bits = *reinterpret_cast<const uint32_t*>(&pair);
  } else {
    const __nv_bfloat162 pair = __floats2bfloat162_rn(first, second);
    bits = *reinterpret_cast<const uint32_t*>(&pair);
  }
  return bits;
}

// Two 16-bit value elements v[key], v[key + 1] of one value dim packed (key in the low half);
// keys >= frames and dims >= value_dim read as +0 and are not loaded.
__device__ __forceinline__ uint32_t load_value_pair(const uint16_t* value_frame0, int64_t frame_stride,
                                                    int key, int frames, bool dim_valid) {
  uint32_t bits = 0;
  if (dim_valid) {
    if (key < frames) bits = __ldg(value_frame0 + key * frame_stride);
    if (key + 1 < frames) bits |= static_cast<uint32_t>(__ldg(value_frame0 + (key + 1) * frame_stride)) << 16;
  }
  return bits;
}

// Tensor-core kernel, fp16/bf16, head_dim and value_dim <= 32 * kDimChunks.
//   p:        q, k, v, out as in TemporalAttentionProblem
//   partials: [N_seq, H, ceil(F / 16)] float32, written
template <typename Element, int kDimChunks, bool kVectorized>
__global__ void __launch_bounds__(kThreads)
    temporal_attention_mma_kernel(const __grid_constant__ TemporalAttentionProblem p,
                                  int64_t sequences_per_block, float* __restrict__ partials) {
  constexpr int kValueTiles = kDimChunks * 4;  // n8 tiles of value dims
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int group = lane / 4;      // row of the A / C fragment, column of the B fragment
  const int quad_lane = lane % 4;  // which pair of columns / which 8 head dims

  const int frames = static_cast<int>(p.num_frames);
  const int head_dim = static_cast<int>(p.head_dim);
  const int value_dim = static_cast<int>(p.value_dim);
  const int query_tiles = static_cast<int>(query_tiles_of(p));
  const float scale_log2 = p.scale * kLog2e;
  const int items = items_of_block(p, blockIdx.x, sequences_per_block, query_tiles);

  for (int item = warp; item < items; item += kWarps) {
    const ItemLocation at = locate_item<Element>(p, blockIdx.x, sequences_per_block, item, query_tiles);
    const int row_lo = at.query_tile * kFrameTile + group;
    const int row_hi = row_lo + 8;
    const uint16_t* value_frame0 = static_cast<const uint16_t*>(at.value);

    uint4 query_lo[kDimChunks];
    uint4 query_hi[kDimChunks];
    load_query_fragments<kDimChunks, kVectorized>(static_cast<const uint16_t*>(at.query),
                                                  p.query_strides[2], p.query_strides[3], row_lo,
                                                  frames, head_dim, quad_lane, query_lo, query_hi);

    RowMass mass_lo;
    RowMass mass_hi;
    float acc[kValueTiles][4] = {};  // C fragments of out rows row_lo (0, 1) and row_hi (2, 3)
    for (int key_chunk = 0; key_chunk < frames; key_chunk += kFrameTile) {
      int keys[4];
      float lo_logits[4];
      float hi_logits[4];
      key_chunk_logits<Element, kDimChunks, kVectorized>(
          query_lo, query_hi, static_cast<const uint16_t*>(at.key), p.key_strides[2],
          p.key_strides[3], key_chunk, frames, head_dim, scale_log2, group, quad_lane, keys,
          lo_logits, hi_logits);
      float lo_weights[4];
      float hi_weights[4];
      const float lo_rescale = mass_lo.update(lo_logits, keys, row_lo, chunk_row_max(lo_logits), lo_weights);
      const float hi_rescale = mass_hi.update(hi_logits, keys, row_hi, chunk_row_max(hi_logits), hi_weights);

      // P (16 rows x 16 keys) as an A fragment: slots 2q, 2q + 1 are the first n8 tile's keys
      // (weights 0, 1), slots 2q + 8, 2q + 9 the second's (weights 2, 3).
      const uint32_t p0 = pack_pair<Element>(lo_weights[0], lo_weights[1]);
      const uint32_t p1 = pack_pair<Element>(hi_weights[0], hi_weights[1]);
      const uint32_t p2 = pack_pair<Element>(lo_weights[2], lo_weights[3]);
      const uint32_t p3 = pack_pair<Element>(hi_weights[2], hi_weights[3]);
      const int key_first = key_chunk + quad_lane * 2;  // B rows 2q, 2q + 1 (and + 8, + 9)
#pragma unroll
      for (int tile = 0; tile < kValueTiles; ++tile) {
        acc[tile][0] *= lo_rescale;
        acc[tile][1] *= lo_rescale;
        acc[tile][2] *= hi_rescale;
        acc[tile][3] *= hi_rescale;
        if (tile * 8 >= value_dim) continue;  // warp-uniform
        const int dim = tile * 8 + group;       // B column: the value dim this lane loads
        const bool dim_valid = dim < value_dim;
        const uint16_t* column = value_frame0 + (dim_valid ? dim : 0) * p.value_strides[3];
        const uint32_t b0 = load_value_pair(column, p.value_strides[2], key_first, frames, dim_valid);
        const uint32_t b1 = load_value_pair(column, p.value_strides[2], key_first + 8, frames, dim_valid);
        mma_m16n8k16<Element>(acc[tile], p0, p1, p2, p3, b0, b1);
      }
    }

    // The 4 lanes of a quad share each row (and its running max): add their sums.
    const float lo_off = quad_sum(mass_lo.off);
    const float lo_total = lo_off + quad_sum(mass_lo.diag);
    const float hi_off = quad_sum(mass_hi.off);
    const float hi_total = hi_off + quad_sum(mass_hi.diag);
    const bool lo_valid = row_lo < frames;
    const bool hi_valid = row_hi < frames;
    Element* out = static_cast<Element*>(at.out);
    const float lo_inverse = 1.f / lo_total;
    const float hi_inverse = 1.f / hi_total;
#pragma unroll
    for (int tile = 0; tile < kValueTiles; ++tile) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int dim = tile * 8 + quad_lane * 2 + i;
        if (dim >= value_dim) continue;
        if (lo_valid) {
          out[row_lo * p.out_strides[2] + dim * p.out_strides[3]] = from_float<Element>(acc[tile][i] * lo_inverse);
        }
        if (hi_valid) {
          out[row_hi * p.out_strides[2] + dim * p.out_strides[3]] = from_float<Element>(acc[tile][2 + i] * hi_inverse);
        }
      }
    }
    float mass = 0.f;
    if (quad_lane == 0) {
      if (lo_valid) mass += lo_off / lo_total;
      if (hi_valid) mass += hi_off / hi_total;
    }
    mass = warp_sum(mass);
    if (lane == 0) partials[(at.sequence * p.heads + at.head) * query_tiles + at.query_tile] = mass;
  }
}

// SIMT kernel, any dtype and sizes: a warp per item, its (up to) 16 rows one after another; each
// logit a warp-wide fp32 dot product (warp_dot), online softmax one key at a time (RowMass, log2
// units); value dims in passes of 32 * kSimtValuesPerLane (one pass for value_dim <= 256; more
// passes recompute the logits).
template <typename Element>
__global__ void __launch_bounds__(kThreads)
    temporal_attention_simt_kernel(const __grid_constant__ TemporalAttentionProblem p,
                                   int64_t sequences_per_block, float* __restrict__ partials) {
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int64_t frames = p.num_frames;  // <= INT_MAX (checked at launch): int rows and keys
  const float scale_log2 = p.scale * kLog2e;
  const int query_tiles = static_cast<int>(query_tiles_of(p));
  const int items = items_of_block(p, blockIdx.x, sequences_per_block, query_tiles);

  for (int item = warp; item < items; item += kWarps) {
    const ItemLocation at = locate_item<Element>(p, blockIdx.x, sequences_per_block, item, query_tiles);
    const Element* query = static_cast<const Element*>(at.query);
    const Element* key = static_cast<const Element*>(at.key);
    const Element* value = static_cast<const Element*>(at.value);
    Element* out = static_cast<Element*>(at.out);
    float mass = 0.f;  // lane 0 only
    const int first_row = at.query_tile * kFrameTile;
    const int end_row = static_cast<int>(frames - first_row < kFrameTile ? frames : first_row + kFrameTile);
    for (int row = first_row; row < end_row; ++row) {
      const Element* query_row = query + row * p.query_strides[2];
      for (int64_t first_dim = 0; first_dim < p.value_dim; first_dim += 32 * kSimtValuesPerLane) {
        RowMass row_mass;
        float acc[kSimtValuesPerLane] = {};
        for (int j = 0; j < frames; ++j) {
          const Element* key_row = key + j * p.key_strides[2];
          const float logit =
              warp_dot(query_row, p.query_strides[3], key_row, p.key_strides[3], p.head_dim) * scale_log2;
          float weight;
          const float rescale = row_mass.update(logit, j, row, weight);
          const Element* value_row = value + j * p.value_strides[2];
#pragma unroll
          for (int i = 0; i < kSimtValuesPerLane; ++i) {
            const int64_t dim = first_dim + lane + 32 * i;
            const float v = dim < p.value_dim ? to_float(value_row[dim * p.value_strides[3]]) : 0.f;
            acc[i] = fmaf(weight, v, acc[i] * rescale);
          }
        }
        const float total = row_mass.off + row_mass.diag;
#pragma unroll
        for (int i = 0; i < kSimtValuesPerLane; ++i) {
          const int64_t dim = first_dim + lane + 32 * i;
          if (dim < p.value_dim) {
            out[row * p.out_strides[2] + dim * p.out_strides[3]] = from_float<Element>(acc[i] / total);
          }
        }
        if (first_dim == 0 && lane == 0) mass += row_mass.off / total;
      }
    }
    if (lane == 0) partials[(at.sequence * p.heads + at.head) * query_tiles + at.query_tile] = mass;
  }
}

}  // namespace

int64_t temporal_attention_partial_count(const TemporalAttentionProblem& problem) {
  return problem.num_sequences * problem.heads * query_tiles_of(problem);
}

cudaError_t launch_temporal_attention(const TemporalAttentionProblem& p, int compute_capability_major,
                                      float* partials, float* per_sequence_cfi, cudaStream_t stream) {
  const int64_t sequences_per_block = sequences_per_block_of(p);
  const int64_t blocks = ceil_div(p.num_sequences, sequences_per_block) * p.heads;
  if (blocks > INT_MAX || p.num_sequences > INT_MAX || p.num_frames > INT_MAX ||
      p.head_dim > INT_MAX || p.value_dim > INT_MAX) {
    return cudaErrorInvalidValue;
  }
  const bool tensor_cores = compute_capability_major >= 8 && p.scalar_kind != ScalarKind::Float32 &&
                            p.head_dim <= kMaxMmaDim && p.value_dim <= kMaxMmaDim;
  const unsigned grid = static_cast<unsigned>(blocks);
  if (tensor_cores) {
    const bool vectorized = query_key_rows_vectorizable(p);
    const int64_t dims = p.head_dim > p.value_dim ? p.head_dim : p.value_dim;
    EAV_HALF_TYPE_SWITCH(p.scalar_kind, Element, [&] {
      EAV_DIM_CHUNKS_SWITCH(dims, kDimChunks, [&] {
        EAV_BOOL_SWITCH(vectorized, kVectorized, [&] {
          temporal_attention_mma_kernel<Element, kDimChunks, kVectorized>
              <<<grid, kThreads, 0, stream>>>(p, sequences_per_block, partials);
        });
      });
    });
  } else {
    EAV_SCALAR_TYPE_SWITCH(p.scalar_kind, Element, [&] {
      temporal_attention_simt_kernel<Element><<<grid, kThreads, 0, stream>>>(p, sequences_per_block, partials);
    });
  }
  cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) return error;
  if (p.num_frames == 1) {  // no cross-frame pairs: CFI is 0 by definition
    return cudaMemsetAsync(per_sequence_cfi, 0, sizeof(float) * p.num_sequences, stream);
  }
  const double rows_times_pairs = static_cast<double>(p.heads) * static_cast<double>(p.num_frames) *
                                  static_cast<double>(p.num_frames - 1);
  reduce_partials_kernel<kReduceThreads>
      <<<static_cast<unsigned>(p.num_sequences), kReduceThreads, 0, stream>>>(
          partials, p.heads * query_tiles_of(p), rows_times_pairs, per_sequence_cfi);
  return cudaGetLastError();
}

}  // namespace eav::cuda
