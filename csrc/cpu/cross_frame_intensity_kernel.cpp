// Fused CPU cross-frame intensity: for every (batch, head, spatial position) the F x F temporal
// logits are computed in fp32 from q and k read in place, each row is reduced to its off-diagonal
// softmax mass, and only those sums leave the kernel. The F x F map of the whole problem is never
// built; per position one F x F tile of logits lives in a per-thread scratch buffer (L1/L2).
//
// This file is compiled once per CPU capability (CMakeLists.txt): with CPU_CAPABILITY=DEFAULT and
// with CPU_CAPABILITY=AVX2 (-mavx2 -mfma -mf16c). at::vec::Vectorized<float> is 8 lanes in both.
// AVX-512 machines also take the AVX2 build: on Zen 4 512-bit FMAs are double-pumped, so 8-lane
// code reaches the same FLOP rate with a cheaper horizontal reduction.

#include "cross_frame_intensity_kernel.h"

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(CPU_CAPABILITY_AVX2)
#include <immintrin.h>
#endif

namespace eav::cpu::CPU_CAPABILITY {
namespace {

using Vec = at::vec::Vectorized<float>;
constexpr int64_t kLanes = Vec::size();

// One logits tile: kTileRows query frames against kTileCols key frames, accumulated over the head
// dimension in kTileRows * kTileCols vectors that are then reduced together (lane i = sum of acc i).
constexpr int64_t kTileRows = 4;
constexpr int64_t kTileCols = 2;
constexpr int64_t kTileSize = kTileRows * kTileCols;

int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// dst[i] = float(src[i * stride]) * multiplier for i < count. Contiguous rows take the vector path.
template <typename scalar_t>
void load_row_as_float(const scalar_t* src, int64_t stride, int64_t count, float multiplier,
                       float* dst) {
  int64_t i = 0;
  if (stride == 1) {
    const Vec factor(multiplier);
    for (; i + kLanes <= count; i += kLanes) {
      Vec values;
      if constexpr (std::is_same_v<scalar_t, float>) {
        values = Vec::loadu(src + i);
      } else {
        at::vec::load_to_float<scalar_t>(src + i, values);
      }
      (values * factor).store(dst + i);
    }
  }
  for (; i < count; ++i) {
    dst[i] = static_cast<float>(src[i * stride]) * multiplier;
  }
}

// sums[i] = horizontal sum of acc[i], for the kTileSize accumulators of one tile.
inline void sum_each(const Vec (&acc)[kTileSize], float* sums) {
#if defined(CPU_CAPABILITY_AVX2)
  static_assert(kLanes == 8 && kTileSize == 8, "the AVX2 reduction folds 8 vectors of 8 lanes");
  // hadd pairs, then quads; the two 128-bit halves then hold the low and high half sums.
  const __m256 h01 = _mm256_hadd_ps(acc[0], acc[1]);
  const __m256 h23 = _mm256_hadd_ps(acc[2], acc[3]);
  const __m256 h45 = _mm256_hadd_ps(acc[4], acc[5]);
  const __m256 h67 = _mm256_hadd_ps(acc[6], acc[7]);
  const __m256 h0123 = _mm256_hadd_ps(h01, h23);
  const __m256 h4567 = _mm256_hadd_ps(h45, h67);
  const __m256 low = _mm256_permute2f128_ps(h0123, h4567, 0x20);
  const __m256 high = _mm256_permute2f128_ps(h0123, h4567, 0x31);
  _mm256_storeu_ps(sums, _mm256_add_ps(low, high));
#else
  for (int64_t i = 0; i < kTileSize; ++i) {
    sums[i] = at::vec::vec_reduce_all<float>([](Vec& a, Vec& b) { return a + b; }, acc[i]);
  }
#endif
}

// logits[r * logits_stride + c] = <q_rows[r], k_rows[c]> for r < kTileRows, c < kTileCols.
// q_rows, k_rows: row-major with row stride padded_dim (a multiple of kLanes, zero-padded).
inline void logits_tile(const float* q_rows, const float* k_rows, int64_t padded_dim,
                        float* logits, int64_t logits_stride) {
  Vec acc[kTileSize];
  for (auto& a : acc) a = Vec(0.f);
  for (int64_t d = 0; d < padded_dim; d += kLanes) {
    Vec k_vec[kTileCols];
    for (int64_t c = 0; c < kTileCols; ++c) k_vec[c] = Vec::loadu(k_rows + c * padded_dim + d);
    for (int64_t r = 0; r < kTileRows; ++r) {
      const Vec q_vec = Vec::loadu(q_rows + r * padded_dim + d);
      for (int64_t c = 0; c < kTileCols; ++c) {
        acc[r * kTileCols + c] = at::vec::fmadd(q_vec, k_vec[c], acc[r * kTileCols + c]);
      }
    }
  }
  float sums[kTileSize];
  sum_each(acc, sums);
  for (int64_t r = 0; r < kTileRows; ++r) {
    for (int64_t c = 0; c < kTileCols; ++c) logits[r * logits_stride + c] = sums[r * kTileCols + c];
  }
}

// Off-diagonal softmax mass of one row: sum_{j != diagonal} softmax(row)_j, computed as
// off / (off + diag) so that nothing cancels when the row is strongly diagonal.
// row: [padded_frames] logits, entries past the real frames set to -inf; overwritten.
// A non-finite row maximum (NaN or +inf logit, or an all -inf row) gives NaN, as softmax does.
float row_off_diagonal_mass(float* row, int64_t diagonal, int64_t padded_frames) {
  Vec running_max(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < padded_frames; j += kLanes) {
    running_max = at::vec::maximum(running_max, Vec::loadu(row + j));
  }
  const float row_max = at::vec::vec_reduce_all<float>(
      [](Vec& a, Vec& b) { return at::vec::maximum(a, b); }, running_max);
  if (!std::isfinite(row_max)) return std::numeric_limits<float>::quiet_NaN();
  const Vec shift(row_max);
  for (int64_t j = 0; j < padded_frames; j += kLanes) {
    (Vec::loadu(row + j) - shift).exp_u20().store(row + j);
  }
  const float diagonal_weight = row[diagonal];
  row[diagonal] = 0.f;
  Vec off_sum(0.f);
  for (int64_t j = 0; j < padded_frames; j += kLanes) off_sum = off_sum + Vec::loadu(row + j);
  const float off = at::vec::vec_reduce_all<float>([](Vec& a, Vec& b) { return a + b; }, off_sum);
  return off / (off + diagonal_weight);
}

// Per-thread scratch for one spatial position: q and k frames as fp32 rows, and the F x F logits.
struct PositionScratch {
  int64_t padded_dim;     // head_dim rounded up to kLanes
  int64_t padded_rows;    // num_frames rounded up to kTileRows
  int64_t padded_cols;    // num_frames rounded up to kTileCols
  int64_t logits_stride;  // num_frames rounded up to kLanes
  std::vector<float> q_rows;  // [padded_rows, padded_dim], rows >= F and dims >= D stay zero
  std::vector<float> k_rows;  // [padded_cols, padded_dim], rows >= F and dims >= D stay zero
  std::vector<float> logits;  // [padded_rows, logits_stride]

  PositionScratch(int64_t num_frames, int64_t head_dim)
      : padded_dim(round_up(head_dim, kLanes)),
        padded_rows(round_up(num_frames, kTileRows)),
        padded_cols(round_up(num_frames, kTileCols)),
        logits_stride(round_up(num_frames, kLanes)),
        q_rows(padded_rows * padded_dim, 0.f),
        k_rows(padded_cols * padded_dim, 0.f),
        logits(padded_rows * logits_stride, 0.f) {}
};

// Sum over the F rows of one (batch, head, position) of each row's off-diagonal mass.
template <typename scalar_t>
double position_off_diagonal_mass(const scalar_t* query_position,  // frame t at + t * frame_stride
                                  const scalar_t* key_position,
                                  const CrossFrameProblem& p, int64_t query_frame_stride,
                                  int64_t key_frame_stride, PositionScratch& scratch) {
  const int64_t frames = p.num_frames;
  for (int64_t t = 0; t < frames; ++t) {
    load_row_as_float(query_position + t * query_frame_stride, p.query_strides[3], p.head_dim,
                      p.scale, scratch.q_rows.data() + t * scratch.padded_dim);
    load_row_as_float(key_position + t * key_frame_stride, p.key_strides[3], p.head_dim, 1.f,
                      scratch.k_rows.data() + t * scratch.padded_dim);
  }
  for (int64_t t0 = 0; t0 < scratch.padded_rows; t0 += kTileRows) {
    for (int64_t j0 = 0; j0 < scratch.padded_cols; j0 += kTileCols) {
      logits_tile(scratch.q_rows.data() + t0 * scratch.padded_dim,
                  scratch.k_rows.data() + j0 * scratch.padded_dim, scratch.padded_dim,
                  scratch.logits.data() + t0 * scratch.logits_stride + j0, scratch.logits_stride);
    }
  }
  double mass = 0.0;
  for (int64_t t = 0; t < frames; ++t) {
    float* row = scratch.logits.data() + t * scratch.logits_stride;
    for (int64_t j = frames; j < scratch.logits_stride; ++j) {
      row[j] = -std::numeric_limits<float>::infinity();
    }
    mass += row_off_diagonal_mass(row, t, scratch.logits_stride);
  }
  return mass;
}

template <typename scalar_t>
void run(const CrossFrameProblem& p, float* per_batch_cfi) {
  const auto* query = static_cast<const scalar_t*>(p.query);
  const auto* key = static_cast<const scalar_t*>(p.key);
  const int64_t chunks_per_head = (p.spatial + kPositionsPerChunk - 1) / kPositionsPerChunk;
  const int64_t chunks_per_batch = p.heads * chunks_per_head;
  const int64_t num_chunks = p.batch * chunks_per_batch;
  const int64_t heads_per_kv_head = p.heads / p.kv_heads;
  const int64_t query_frame_stride = p.spatial * p.query_strides[2];
  const int64_t key_frame_stride = p.spatial * p.key_strides[2];

  std::vector<double> chunk_mass(num_chunks, 0.0);  // [batch, heads, chunks_per_head]
  at::parallel_for(0, num_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    PositionScratch scratch(p.num_frames, p.head_dim);
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      const int64_t b = chunk / chunks_per_batch;
      const int64_t h = chunk % chunks_per_batch / chunks_per_head;
      const int64_t position_begin = chunk % chunks_per_head * kPositionsPerChunk;
      const int64_t position_end = std::min(position_begin + kPositionsPerChunk, p.spatial);
      const scalar_t* query_head = query + b * p.query_strides[0] + h * p.query_strides[1];
      const scalar_t* key_head =
          key + b * p.key_strides[0] + h / heads_per_kv_head * p.key_strides[1];
      double mass = 0.0;
      for (int64_t s = position_begin; s < position_end; ++s) {
        mass += position_off_diagonal_mass(query_head + s * p.query_strides[2],
                                           key_head + s * p.key_strides[2], p, query_frame_stride,
                                           key_frame_stride, scratch);
      }
      chunk_mass[chunk] = mass;
    }
  });

  // Fixed-order reduction: independent of how chunks were spread over threads.
  const double rows_per_batch = static_cast<double>(p.heads) * p.spatial * p.num_frames;
  for (int64_t b = 0; b < p.batch; ++b) {
    double mass = 0.0;
    for (int64_t c = 0; c < chunks_per_batch; ++c) mass += chunk_mass[b * chunks_per_batch + c];
    // mean over (head, position) of off / (F (F - 1)) == total mass / (rows * (F - 1))
    per_batch_cfi[b] = static_cast<float>(mass / (rows_per_batch * (p.num_frames - 1)));
  }
}

}  // namespace

void cross_frame_intensity(const CrossFrameProblem& problem, float* per_batch_cfi) {
  if (problem.num_frames == 1) {  // no cross-frame pairs: CFI is 0 by definition
    std::fill(per_batch_cfi, per_batch_cfi + problem.batch, 0.f);
    return;
  }
  switch (problem.scalar_kind) {
    case ScalarKind::Float32:
      return run<float>(problem, per_batch_cfi);
    case ScalarKind::Float16:
      return run<c10::Half>(problem, per_batch_cfi);
    case ScalarKind::BFloat16:
      return run<c10::BFloat16>(problem, per_batch_cfi);
  }
}

}  // namespace eav::cpu::CPU_CAPABILITY
