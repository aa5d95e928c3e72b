// One warp's 16-query-frame tile against 16-key-frame chunks of the same sequence: the QK^T part
// shared by the CFI kernel (cross_frame_intensity.cu) and the temporal-attention kernel
// (temporal_attention.cu). Fragments come straight from global memory (mma.cuh); lane = 4 * group
// + quad_lane owns query rows row_lo = tile_first_frame + group and row_hi = row_lo + 8.
#pragma once

#include <cmath>
#include <cstdint>

#include "block_reduce.cuh"
#include "mma.cuh"

namespace eav::cuda {

constexpr int kFrameTile = 16;  // query frames per MMA tile, key frames per softmax chunk

// A fragments of the query rows row_lo and row_hi (frames), all head dims (kDimChunks x 32):
// 16 bytes per row and 32 dims. Rows >= frames read as zeros.
//   frame0: the row of frame 0 (16-bit elements); frame f is frame0 + f * frame_stride
template <int kDimChunks, bool kVectorized>
__device__ __forceinline__ void load_query_fragments(const uint16_t* frame0, int64_t frame_stride,
                                                     int64_t dim_stride, int row_lo, int frames,
                                                     int head_dim, int quad_lane,
                                                     uint4 (&query_lo)[kDimChunks],
                                                     uint4 (&query_hi)[kDimChunks]) {
  const int row_hi = row_lo + 8;
  const bool lo_valid = row_lo < frames;
  const bool hi_valid = row_hi < frames;
  const uint16_t* lo = frame0 + (lo_valid ? row_lo : 0) * frame_stride;
  const uint16_t* hi = frame0 + (hi_valid ? row_hi : 0) * frame_stride;
#pragma unroll
  for (int chunk = 0; chunk < kDimChunks; ++chunk) {
    const int first_dim = chunk * 32 + quad_lane * 8;
    query_lo[chunk] = load_dim_group<kVectorized>(lo, dim_stride, first_dim, head_dim, lo_valid);
    query_hi[chunk] = load_dim_group<kVectorized>(hi, dim_stride, first_dim, head_dim, hi_valid);
  }
}

// The logits (log2 units: scale_log2 = scale * log2(e) applied) of this lane's rows against key
// frames key_chunk .. key_chunk + 16, as the C fragments of two n8 MMAs give them:
//   keys[i]:             the key frame of slot i (i = 2 * tile + {0, 1}: key_chunk + 8 tile + 2q + {0, 1})
//   lo_logits/hi_logits: rows row_lo / row_hi; keys >= frames are -inf
//   key_frame0: the row of key frame 0; frame f is key_frame0 + f * key_frame_stride
template <typename Element, int kDimChunks, bool kVectorized>
__device__ __forceinline__ void key_chunk_logits(const uint4 (&query_lo)[kDimChunks],
                                                 const uint4 (&query_hi)[kDimChunks],
                                                 const uint16_t* key_frame0,
                                                 int64_t key_frame_stride, int64_t dim_stride,
                                                 int key_chunk, int frames, int head_dim,
                                                 float scale_log2, int group, int quad_lane,
                                                 int (&keys)[4], float (&lo_logits)[4],
                                                 float (&hi_logits)[4]) {
  float logits[2][4] = {};  // [n8 tile][C fragment]
#pragma unroll
  for (int tile = 0; tile < 2; ++tile) {
    const int key = key_chunk + tile * 8 + group;  // the key frame this lane loads for B
    const bool key_valid = key < frames;
    const uint16_t* key_row = key_frame0 + (key_valid ? key : 0) * key_frame_stride;
#pragma unroll
    for (int chunk = 0; chunk < kDimChunks; ++chunk) {
      const uint4 k = load_dim_group<kVectorized>(key_row, dim_stride, chunk * 32 + quad_lane * 8,
                                                  head_dim, key_valid);
      const uint4& lo = query_lo[chunk];
      const uint4& hi = query_hi[chunk];
      mma_m16n8k16<Element>(logits[tile], lo.x, hi.x, lo.y, hi.y, k.x, k.y);
      mma_m16n8k16<Element>(logits[tile], lo.z, hi.z, lo.w, hi.w, k.z, k.w);
    }
  }
  // C regs 0, 1 are row_lo, regs 2, 3 row_hi.
#pragma unroll
  for (int tile = 0; tile < 2; ++tile) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int key = key_chunk + tile * 8 + quad_lane * 2 + i;
      keys[tile * 2 + i] = key;
      lo_logits[tile * 2 + i] = key < frames ? logits[tile][i] * scale_log2 : -INFINITY;
      hi_logits[tile * 2 + i] = key < frames ? logits[tile][2 + i] * scale_log2 : -INFINITY;
    }
  }
}

// The maximum of a row's 4 logits of a chunk over the 4 lanes of its quad (all 16 keys).
__device__ __forceinline__ float chunk_row_max(const float (&logits)[4]) {
  return quad_max(fmaxf(fmaxf(logits[0], logits[1]), fmaxf(logits[2], logits[3])));
}

}  // namespace eav::cuda
