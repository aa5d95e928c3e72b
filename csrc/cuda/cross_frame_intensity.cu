// CUDA cross-frame intensity (docs/design.md, contract 1).
//
// For every (batch b, head h, spatial position s) the F x F temporal logits scale * Q_s K_s^T
// (Q_s, K_s: the F frames of position s, rows t * S + s of q and k) are reduced row by row to the
// off-diagonal softmax mass; only per-block sums of those masses leave the kernel. The F x F map
// is never stored and q, k are read in place (any strides, 64-bit offsets).
//
// Work decomposition (both kernels): one thread block = kPositionsPerBlock consecutive spatial
// positions of one (b, h); it writes one partial (the sum of its rows' off-diagonal masses). A
// second kernel adds a batch element's partials in a fixed order. Consecutive positions are
// consecutive tokens, so a block reads a few contiguous runs of q and k.
//
// fp16/bf16 on sm_80+: tensor cores (mma.sync m16n8k16, fp32 accumulation). A warp takes one
// (position, 16-query-frame tile) item: F <= 16 frames fit one tile exactly; larger F takes
// ceil(F / 16) query tiles, each looping over key frames in chunks of 16 (two n8 MMAs) with an
// online softmax (row_softmax.cuh). The warps of a block take the items of its positions round
// robin, so the query tiles of one position run side by side and share its key frames in L1.
// Why not pack several positions into one tile: at the realistic F (13 .. 33) the waste of padding
// F to 16 / 48 costs tensor-core cycles we have in excess (CFI is memory bound: ~24 GFLOP against
// 1.46 GB at hunyuan-video), and packing would need a block-diagonal mask and shared-memory
// staging; direct-from-global fragments keep the kernel simple.
// fp32 (and fp16/bf16 below sm_80): a simple SIMT kernel, a warp per position, fp32 dot products
// with a warp all-reduce. fp32 inputs must not be rounded to tf32/bf16 (the contract for fp32
// is fp32-level error), and fp32 is not the dtype these models run in.

#include "cross_frame_intensity_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>

#include "block_reduce.cuh"
#include "frame_tile.cuh"
#include "row_softmax.cuh"
#include "static_switch.h"

namespace eav::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kPositionsPerBlock = 8;   // 8 positions x up to 3 query tiles (F <= 48) = 24 items
constexpr int kReduceThreads = 256;

// Where block `block` works: q[b, h] and k[b, h / (H / Hk)] (element pointers), its first
// spatial position and how many positions it has (<= kPositionsPerBlock).
template <typename Element>
__device__ inline void locate_block(const CrossFrameProblem& p, int64_t block,
                                    const Element*& query_head, const Element*& key_head,
                                    int64_t& first_position, int& positions) {
  const int64_t tiles_per_head = ceil_div(p.spatial, kPositionsPerBlock);
  const int64_t blocks_per_batch = p.heads * tiles_per_head;
  const int64_t b = block / blocks_per_batch;
  const int64_t h = block % blocks_per_batch / tiles_per_head;
  const int64_t tile = block % tiles_per_head;
  const int64_t heads_per_kv_head = p.heads / p.kv_heads;
  query_head = static_cast<const Element*>(p.query) + b * p.query_strides[0] + h * p.query_strides[1];
  key_head = static_cast<const Element*>(p.key) + b * p.key_strides[0] +
             h / heads_per_kv_head * p.key_strides[1];
  first_position = tile * kPositionsPerBlock;
  positions = static_cast<int>(p.spatial - first_position < kPositionsPerBlock
                                   ? p.spatial - first_position
                                   : kPositionsPerBlock);
}

// Tensor-core kernel, fp16/bf16, head_dim <= 32 * kDimChunks.
//   p:        query [B, H, F*S, D], key [B, Hk, F*S, D] (any strides, elements), F >= 2
//   partials: [B * H * ceil(S / kPositionsPerBlock)] float32, one per block, written
template <typename Element, int kDimChunks, bool kVectorized>
__global__ void __launch_bounds__(kThreads)
    cross_frame_intensity_mma_kernel(const __grid_constant__ CrossFrameProblem p, float* __restrict__ partials) {
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int group = lane / 4;      // row of the A / C fragment, key column of the B fragment
  const int quad_lane = lane % 4;  // which pair of columns / which 8 head dims

  const uint16_t* query_head;
  const uint16_t* key_head;
  int64_t first_position;
  int positions;
  locate_block(p, blockIdx.x, query_head, key_head, first_position, positions);

  const int frames = static_cast<int>(p.num_frames);
  const int head_dim = static_cast<int>(p.head_dim);
  const int query_tiles = static_cast<int>(ceil_div(frames, kFrameTile));
  const int64_t query_frame_stride = p.spatial * p.query_strides[2];  // token t*S+s -> (t+1)*S+s
  const int64_t key_frame_stride = p.spatial * p.key_strides[2];
  const float scale_log2 = p.scale * kLog2e;

  float mass = 0.f;  // sum of this lane's finished rows' off-diagonal masses (quad_lane 0 only)
  for (int item = warp; item < positions * query_tiles; item += kWarps) {
    const int64_t position = first_position + item / query_tiles;
    const int row_lo = item % query_tiles * kFrameTile + group;  // query frames of this lane
    const int row_hi = row_lo + 8;
    const uint16_t* query_position = query_head + position * p.query_strides[2];
    const uint16_t* key_position = key_head + position * p.key_strides[2];

    uint4 query_lo[kDimChunks];
    uint4 query_hi[kDimChunks];
    load_query_fragments<kDimChunks, kVectorized>(query_position, query_frame_stride,
                                                  p.query_strides[3], row_lo, frames, head_dim,
                                                  quad_lane, query_lo, query_hi);

    RowMass row_mass_lo;
    RowMass row_mass_hi;
    for (int key_chunk = 0; key_chunk < frames; key_chunk += kFrameTile) {
      int keys[4];
      float lo_logits[4];
      float hi_logits[4];
      key_chunk_logits<Element, kDimChunks, kVectorized>(
          query_lo, query_hi, key_position, key_frame_stride, p.key_strides[3], key_chunk, frames,
          head_dim, scale_log2, group, quad_lane, keys, lo_logits, hi_logits);
      row_mass_lo.update(lo_logits, keys, row_lo, chunk_row_max(lo_logits));
      row_mass_hi.update(hi_logits, keys, row_hi, chunk_row_max(hi_logits));
    }

    // The 4 lanes of a quad share each row (and its running max): add their sums.
    const float lo_off = quad_sum(row_mass_lo.off);
    const float lo_diag = quad_sum(row_mass_lo.diag);
    const float hi_off = quad_sum(row_mass_hi.off);
    const float hi_diag = quad_sum(row_mass_hi.diag);
    if (quad_lane == 0) {
      if (row_lo < frames) mass += lo_off / (lo_off + lo_diag);
      if (row_hi < frames) mass += hi_off / (hi_off + hi_diag);
    }
  }

  const float total = block_sum<kWarps>(mass);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// SIMT kernel, any dtype and head_dim: a warp per position, each logit a warp-wide fp32 dot
// product (warp_dot: lanes split the head dims) and an online softmax per row, one key at a time
// (RowMass, log2 units).
//   p:        query [B, H, F*S, D], key [B, Hk, F*S, D] (any strides, elements), F >= 2
//   partials: [B * H * ceil(S / kPositionsPerBlock)] float32, one per block, written
template <typename Element>
__global__ void __launch_bounds__(kThreads)
    cross_frame_intensity_simt_kernel(const __grid_constant__ CrossFrameProblem p, float* __restrict__ partials) {
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const Element* query_head;
  const Element* key_head;
  int64_t first_position;
  int positions;
  locate_block(p, blockIdx.x, query_head, key_head, first_position, positions);

  const int64_t frames = p.num_frames;  // <= INT_MAX (checked at launch): int rows and keys
  const int64_t query_frame_stride = p.spatial * p.query_strides[2];
  const int64_t key_frame_stride = p.spatial * p.key_strides[2];
  const float scale_log2 = p.scale * kLog2e;

  float mass = 0.f;  // lane 0 only
  for (int item = warp; item < positions; item += kWarps) {
    const int64_t position = first_position + item;
    const Element* query_position = query_head + position * p.query_strides[2];
    const Element* key_position = key_head + position * p.key_strides[2];
    for (int row = 0; row < frames; ++row) {
      const Element* query_row = query_position + row * query_frame_stride;
      RowMass row_mass;
      for (int key = 0; key < frames; ++key) {
        const Element* key_row = key_position + key * key_frame_stride;
        const float logit =
            warp_dot(query_row, p.query_strides[3], key_row, p.key_strides[3], p.head_dim) * scale_log2;
        row_mass.update(logit, key, row);
      }
      if (lane == 0) mass += row_mass.off / (row_mass.off + row_mass.diag);
    }
  }

  const float total = block_sum<kWarps>(mass);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

constexpr int64_t kMaxMmaHeadDim = 256;

}  // namespace

int64_t cross_frame_intensity_partial_count(const CrossFrameProblem& problem) {
  return problem.batch * problem.heads * ceil_div(problem.spatial, kPositionsPerBlock);
}

cudaError_t launch_cross_frame_intensity(const CrossFrameProblem& p, int compute_capability_major,
                                         float* partials, float* per_batch_cfi,
                                         cudaStream_t stream) {
  if (p.num_frames == 1) {  // no cross-frame pairs: CFI is 0 by definition
    return cudaMemsetAsync(per_batch_cfi, 0, sizeof(float) * p.batch, stream);
  }
  const int64_t blocks = cross_frame_intensity_partial_count(p);
  if (blocks > INT_MAX || p.batch > INT_MAX || p.num_frames > INT_MAX || p.head_dim > INT_MAX) {
    return cudaErrorInvalidValue;
  }
  const bool tensor_cores = compute_capability_major >= 8 &&
                            p.scalar_kind != ScalarKind::Float32 && p.head_dim <= kMaxMmaHeadDim;
  const unsigned grid = static_cast<unsigned>(blocks);
  if (tensor_cores) {
    const bool vectorized = query_key_rows_vectorizable(p);
    EAV_HALF_TYPE_SWITCH(p.scalar_kind, Element, [&] {
      EAV_DIM_CHUNKS_SWITCH(p.head_dim, kDimChunks, [&] {
        EAV_BOOL_SWITCH(vectorized, kVectorized, [&] {
          cross_frame_intensity_mma_kernel<Element, kDimChunks, kVectorized>
              <<<grid, kThreads, 0, stream>>>(p, partials);
        });
      });
    });
  } else {
    EAV_SCALAR_TYPE_SWITCH(p.scalar_kind, Element, [&] {
      cross_frame_intensity_simt_kernel<Element><<<grid, kThreads, 0, stream>>>(p, partials);
    });
  }
  cudaError_t error = cudaGetLastError();
  if (error != cudaSuccess) return error;
  const double rows_times_pairs = static_cast<double>(p.heads) * static_cast<double>(p.spatial) *
                                  static_cast<double>(p.num_frames) *
                                  static_cast<double>(p.num_frames - 1);
  reduce_partials_kernel<kReduceThreads><<<static_cast<unsigned>(p.batch), kReduceThreads, 0, stream>>>(
      partials, blocks / p.batch, rows_times_pairs, per_batch_cfi);
  return cudaGetLastError();
}

}  // namespace eav::cuda
