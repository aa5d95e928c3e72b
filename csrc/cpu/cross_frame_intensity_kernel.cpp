// Fused CPU cross-frame intensity: for every (batch, head, spatial position) the F x F temporal
// logits are computed in fp32 from q and k read in place, each row is reduced to its off-diagonal
// softmax mass, and only those sums leave the kernel. The F x F map of the whole problem is never
// built; per position one F x F tile of logits lives in a per-thread scratch buffer (L1/L2).
//
// This file is compiled once per CPU capability (CMakeLists.txt): with CPU_CAPABILITY=DEFAULT,
// with CPU_CAPABILITY=AVX2 (-mavx2 -mfma -mf16c), and as AVX512_BF16: the AVX2 code plus
// EAV_BF16_DOT (-mavx512bf16 -mavx512vl), where bf16 inputs skip the conversion to fp32 and
// go through vdpbf16ps, which multiplies bf16 pairs exactly and accumulates in fp32 at twice the
// multiply-adds per instruction of an fp32 FMA. at::vec::Vectorized<float> is 8 lanes in all
// builds: on Zen 4 512-bit FMAs are double-pumped, so 8-lane code reaches the same FLOP rate with
// a cheaper horizontal reduction.
//
// at::vec is used as the header-only library it is: this file is compiled without
// TORCH_TARGET_VERSION, against the headers of the torch it is built with, and calls no function
// of libtorch (threads come from the caller), so the extension still imports only torch's
// stable C ABI (tests/test_stable_abi.py checks the symbols). Its behaviour is frozen at build
// time, which is what the speed needs: the same instructions as before the stable-ABI port.

#include "cross_frame_intensity_kernel.h"

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <cstring>
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
// With AVX-512VL's 32 vector registers a 4 x 4 tile (16 accumulators) fits; with AVX2's 16, 4 x 2.
constexpr int64_t kTileRows = 4;
#if defined(__AVX512VL__)
constexpr int64_t kTileCols = 4;
#else
constexpr int64_t kTileCols = 2;
#endif
constexpr int64_t kTileSize = kTileRows * kTileCols;
constexpr int64_t kReduceGroup = 8;  // accumulators folded by one sum_each call
static_assert(kTileSize % kReduceGroup == 0, "tiles are reduced in groups of 8 accumulators");

int64_t round_up(int64_t value, int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}

// How the rows of one position are stored for the logits tiles, and one multiply-add step.
// Float32Operands: any input dtype converted to fp32 rows, one FMA per 8 products.
struct Float32Operands {
  using element_t = float;
  static constexpr int64_t kPerStep = kLanes;  // elements of a row consumed per step

  // dst[i] = float(src[i * stride]) for i < count. Contiguous rows take the vector path.
  template <typename scalar_t>
  static void load_row(const scalar_t* src, int64_t stride, int64_t count, float* dst) {
    int64_t i = 0;
    if (stride == 1) {
      for (; i + kLanes <= count; i += kLanes) {
        Vec values;
        if constexpr (std::is_same_v<scalar_t, float>) {
          values = Vec::loadu(src + i);
        } else {
          at::vec::load_to_float<scalar_t>(src + i, values);
        }
        values.store(dst + i);
      }
    }
    for (; i < count; ++i) dst[i] = static_cast<float>(src[i * stride]);
  }

  static Vec multiply_add(const float* a, const float* b, const Vec& acc) {
    return at::vec::fmadd(Vec::loadu(a), Vec::loadu(b), acc);
  }
};

#if defined(EAV_BF16_DOT)
// BFloat16Operands: bf16 rows kept as they are; vdpbf16ps adds the exact products of 8 bf16
// pairs (16 products) into 8 fp32 lanes.
struct BFloat16Operands {
  using element_t = c10::BFloat16;
  static constexpr int64_t kPerStep = 2 * kLanes;

  static void load_row(const c10::BFloat16* src, int64_t stride, int64_t count, c10::BFloat16* dst) {
    if (stride == 1) {
      std::memcpy(dst, src, count * sizeof(c10::BFloat16));
      return;
    }
    for (int64_t i = 0; i < count; ++i) dst[i] = src[i * stride];
  }

  static Vec multiply_add(const c10::BFloat16* a, const c10::BFloat16* b, const Vec& acc) {
    const __m256bh a_pairs = (__m256bh)_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
    const __m256bh b_pairs = (__m256bh)_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    return _mm256_dpbf16_ps(acc, a_pairs, b_pairs);
  }
};
#endif

// sums[i] = horizontal sum of acc[i], for kReduceGroup accumulators.
inline void sum_each(const Vec* acc, float* sums) {
#if defined(CPU_CAPABILITY_AVX2)
  static_assert(kLanes == 8 && kReduceGroup == 8, "the AVX2 reduction folds 8 vectors of 8 lanes");
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
  for (int64_t i = 0; i < kReduceGroup; ++i) {
    sums[i] = at::vec::vec_reduce_all<float>([](Vec& a, Vec& b) { return a + b; }, acc[i]);
  }
#endif
}

// logits_t[c * ld + r] = scale * <q_rows[r], k_rows[c]> for r < kTileRows, c < kTileCols:
// a tile of the transposed (column-major) logits, so that softmax runs down the rows in lanes.
// q_rows, k_rows: pointers to rows of padded_dim elements (a multiple of Operands::kPerStep).
template <typename Operands, typename element_t = typename Operands::element_t>
inline void logits_tile(const element_t* const* q_rows, const element_t* const* k_rows,
                        int64_t padded_dim, float scale, float* logits_t, int64_t ld) {
  Vec acc[kTileSize];
  for (auto& a : acc) a = Vec(0.f);
  for (int64_t d = 0; d < padded_dim; d += Operands::kPerStep) {
    for (int64_t r = 0; r < kTileRows; ++r) {
      for (int64_t c = 0; c < kTileCols; ++c) {
        acc[r * kTileCols + c] =
            Operands::multiply_add(q_rows[r] + d, k_rows[c] + d, acc[r * kTileCols + c]);
      }
    }
  }
  float sums[kTileSize];
  for (int64_t group = 0; group < kTileSize; group += kReduceGroup) {
    sum_each(acc + group, sums + group);
  }
  for (int64_t c = 0; c < kTileCols; ++c) {
    for (int64_t r = 0; r < kTileRows; ++r) logits_t[c * ld + r] = scale * sums[r * kTileCols + c];
  }
}

// Sum of the off-diagonal softmax mass of query frames t0 .. t0 + valid_rows - 1, one row per
// lane. Each row's mass is off / (off + diag), with off and diag summed apart so that nothing
// cancels when the row is strongly diagonal. A row whose maximum is not finite (a NaN or +inf
// logit) gives NaN, as softmax does.
// logits_t: [frames (key frame j), ld (query frame t)] column-major logits.
double row_block_off_diagonal_mass(const float* logits_t, int64_t ld, int64_t frames, int64_t t0,
                                   int64_t valid_rows) {
  Vec row_max(-std::numeric_limits<float>::infinity());
  for (int64_t j = 0; j < frames; ++j) {
    row_max = at::vec::maximum(row_max, Vec::loadu(logits_t + j * ld + t0));
  }
  const Vec zero(0.f);
  const Vec lane = Vec::arange(0.f, 1.f);
  Vec off(0.f);
  Vec diag(0.f);
  for (int64_t j = 0; j < frames; ++j) {
    const Vec weight = (Vec::loadu(logits_t + j * ld + t0) - row_max).exp_u20();
    if (j >= t0 && j < t0 + kLanes) {  // column j holds the diagonal of row j
      const Vec is_diagonal = lane == Vec(static_cast<float>(j - t0));
      diag = diag + Vec::blendv(zero, weight, is_diagonal);
      off = off + Vec::blendv(weight, zero, is_diagonal);
    } else {
      off = off + weight;
    }
  }
  float mass[kLanes];
  float maxima[kLanes];
  (off / (off + diag)).store(mass);
  row_max.store(maxima);
  double total = 0.0;
  for (int64_t l = 0; l < valid_rows; ++l) {
    total += std::isfinite(maxima[l]) ? mass[l] : std::numeric_limits<float>::quiet_NaN();
  }
  return total;
}

// Per-thread scratch for one spatial position: the rows the logits tiles read (the input rows
// themselves when they are contiguous and of the operand type, else converted copies), and
// the F x F logits.
template <typename Operands>
struct PositionScratch {
  using element_t = typename Operands::element_t;
  int64_t padded_dim;   // head_dim rounded up to Operands::kPerStep
  int64_t padded_rows;  // num_frames rounded up to kTileRows
  int64_t padded_cols;  // num_frames rounded up to kTileCols
  int64_t ld;           // num_frames rounded up to kLanes: leading dimension of logits_t
  std::vector<element_t> q_copy;  // [padded_rows, padded_dim], rows >= F, dims >= D stay zero
  std::vector<element_t> k_copy;  // [padded_cols, padded_dim], rows >= F, dims >= D stay zero
  std::vector<const element_t*> q_rows;  // [padded_rows] what the tiles read
  std::vector<const element_t*> k_rows;  // [padded_cols]
  std::vector<float> logits_t;           // [padded_cols, ld]

  PositionScratch(int64_t num_frames, int64_t head_dim)
      : padded_dim(round_up(head_dim, Operands::kPerStep)),
        padded_rows(round_up(num_frames, kTileRows)),
        padded_cols(round_up(num_frames, kTileCols)),
        ld(round_up(num_frames, kLanes)),
        q_copy(padded_rows * padded_dim, element_t(0.f)),
        k_copy(padded_cols * padded_dim, element_t(0.f)),
        q_rows(padded_rows),
        k_rows(padded_cols),
        logits_t(padded_cols * ld, 0.f) {}
};

// Points rows[t] at frame t of one position: in place when the rows can be read as they are,
// else at converted copies. Padding rows (t >= frames) repeat a real row (in place) or are the
// copies' zero rows; the logits they produce are never read.
template <typename Operands, typename scalar_t, typename element_t = typename Operands::element_t>
void gather_rows(const scalar_t* position, int64_t frame_stride, int64_t dim_stride,
                 int64_t frames, int64_t head_dim, int64_t padded_dim,
                 std::vector<element_t>& copy, std::vector<const element_t*>& rows) {
  const int64_t padded = static_cast<int64_t>(rows.size());
  if constexpr (std::is_same_v<scalar_t, element_t>) {
    if (dim_stride == 1 && head_dim == padded_dim) {
      for (int64_t t = 0; t < padded; ++t) {
        rows[t] = position + std::min(t, frames - 1) * frame_stride;
      }
      return;
    }
  }
  for (int64_t t = 0; t < padded; ++t) {
    if (t < frames) {
      Operands::load_row(position + t * frame_stride, dim_stride, head_dim,
                         copy.data() + t * padded_dim);
    }
    rows[t] = copy.data() + t * padded_dim;
  }
}

// Sum over the F rows of one (batch, head, position) of each row's off-diagonal mass.
template <typename Operands, typename scalar_t>
double position_off_diagonal_mass(const scalar_t* query_position,  // frame t at + t * frame_stride
                                  const scalar_t* key_position,
                                  const CrossFrameProblem& p, int64_t query_frame_stride,
                                  int64_t key_frame_stride, PositionScratch<Operands>& scratch) {
  const int64_t frames = p.num_frames;
  gather_rows<Operands>(query_position, query_frame_stride, p.query_strides[3], frames,
                        p.head_dim, scratch.padded_dim, scratch.q_copy, scratch.q_rows);
  gather_rows<Operands>(key_position, key_frame_stride, p.key_strides[3], frames, p.head_dim,
                        scratch.padded_dim, scratch.k_copy, scratch.k_rows);
  for (int64_t t0 = 0; t0 < scratch.padded_rows; t0 += kTileRows) {
    for (int64_t j0 = 0; j0 < scratch.padded_cols; j0 += kTileCols) {
      logits_tile<Operands>(scratch.q_rows.data() + t0, scratch.k_rows.data() + j0,
                            scratch.padded_dim, p.scale,
                            scratch.logits_t.data() + j0 * scratch.ld + t0, scratch.ld);
    }
  }
  double mass = 0.0;
  for (int64_t t0 = 0; t0 < frames; t0 += kLanes) {
    mass += row_block_off_diagonal_mass(scratch.logits_t.data(), scratch.ld, frames, t0,
                                        std::min(kLanes, frames - t0));
  }
  return mass;
}

// Asks the caches for `bytes` bytes at base + t * frame_stride for every frame t: the next
// position's rows sit in F scattered places that the hardware stream prefetchers do not follow.
template <typename scalar_t>
inline void prefetch_frames(const scalar_t* base, int64_t frame_stride, int64_t frames,
                            int64_t bytes) {
  constexpr int64_t kCacheLine = 64;
  for (int64_t t = 0; t < frames; ++t) {
    const char* row = reinterpret_cast<const char*>(base + t * frame_stride);
    for (int64_t offset = 0; offset < bytes; offset += kCacheLine) {
      __builtin_prefetch(row + offset, /*rw=*/0, /*locality=*/3);
    }
  }
}

// The order in which (head, position) pairs are visited. One work chunk is kPositionsPerChunk
// positions of one batch element, for one head (heads outer: [B, H, N, D] storage, where a
// head's tokens are contiguous) or for all heads (heads inner: [B, N, H, D] storage as diffusers
// hands it over, where a position's heads share cache lines and pages). Chunk sums are reduced
// in chunk order, so the result depends on the strides but never on the thread count.
struct WorkOrder {
  bool heads_inner;
  int64_t position_chunks;   // per (batch, head)
  int64_t chunks_per_batch;  // position_chunks, times heads when heads are outer

  explicit WorkOrder(const CrossFrameProblem& p)
      : heads_inner(std::abs(p.query_strides[1]) < std::abs(p.query_strides[2])),
        position_chunks((p.spatial + kPositionsPerChunk - 1) / kPositionsPerChunk),
        chunks_per_batch(heads_inner ? position_chunks : p.heads * position_chunks) {}
};

template <typename Operands, typename scalar_t>
void run(const CrossFrameProblem& p, float* per_batch_cfi, ParallelFor parallel_for) {
  const auto* query = static_cast<const scalar_t*>(p.query);
  const auto* key = static_cast<const scalar_t*>(p.key);
  const WorkOrder order(p);
  const int64_t num_chunks = p.batch * order.chunks_per_batch;
  const int64_t heads_per_kv_head = p.heads / p.kv_heads;
  const int64_t query_frame_stride = p.spatial * p.query_strides[2];
  const int64_t key_frame_stride = p.spatial * p.key_strides[2];
  // What one position of one head (heads outer) or of all heads (heads inner) spans in memory;
  // nothing is prefetched for rows that are not contiguous.
  const bool contiguous_rows = p.query_strides[3] == 1 && p.key_strides[3] == 1;
  const int64_t query_span =
      !contiguous_rows ? 0
      : order.heads_inner ? ((p.heads - 1) * p.query_strides[1] + p.head_dim) * sizeof(scalar_t)
                          : p.head_dim * sizeof(scalar_t);
  const int64_t key_span =
      !contiguous_rows ? 0
      : order.heads_inner ? ((p.kv_heads - 1) * p.key_strides[1] + p.head_dim) * sizeof(scalar_t)
                          : p.head_dim * sizeof(scalar_t);

  std::vector<double> chunk_mass(num_chunks, 0.0);  // [batch, chunks_per_batch]
  parallel_for(0, num_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    PositionScratch<Operands> scratch(p.num_frames, p.head_dim);
    for (int64_t chunk = chunk_begin; chunk < chunk_end; ++chunk) {
      const int64_t b = chunk / order.chunks_per_batch;
      const int64_t within = chunk % order.chunks_per_batch;
      const int64_t head_begin = order.heads_inner ? 0 : within / order.position_chunks;
      const int64_t head_end = order.heads_inner ? p.heads : head_begin + 1;
      const int64_t position_begin = within % order.position_chunks * kPositionsPerChunk;
      const int64_t position_end = std::min(position_begin + kPositionsPerChunk, p.spatial);
      const scalar_t* query_batch = query + b * p.query_strides[0];
      const scalar_t* key_batch = key + b * p.key_strides[0];

      auto position_mass = [&](int64_t h, int64_t s) {
        return position_off_diagonal_mass<Operands>(
            query_batch + h * p.query_strides[1] + s * p.query_strides[2],
            key_batch + h / heads_per_kv_head * p.key_strides[1] + s * p.key_strides[2], p,
            query_frame_stride, key_frame_stride, scratch);
      };
      auto prefetch_position = [&](int64_t h, int64_t s) {
        if (s >= position_end || query_span == 0) return;
        prefetch_frames(query_batch + h * p.query_strides[1] + s * p.query_strides[2],
                        query_frame_stride, p.num_frames, query_span);
        prefetch_frames(key_batch + h / heads_per_kv_head * p.key_strides[1] +
                            s * p.key_strides[2],
                        key_frame_stride, p.num_frames, key_span);
      };

      double mass = 0.0;
      if (order.heads_inner) {
        for (int64_t s = position_begin; s < position_end; ++s) {
          prefetch_position(0, s + 1);
          for (int64_t h = head_begin; h < head_end; ++h) mass += position_mass(h, s);
        }
      } else {
        for (int64_t s = position_begin; s < position_end; ++s) {
          prefetch_position(head_begin, s + 1);
          mass += position_mass(head_begin, s);
        }
      }
      chunk_mass[chunk] = mass;
    }
  });

  // Fixed-order reduction: independent of how chunks were spread over threads.
  const double rows_per_batch = static_cast<double>(p.heads) * p.spatial * p.num_frames;
  for (int64_t b = 0; b < p.batch; ++b) {
    double mass = 0.0;
    for (int64_t c = 0; c < order.chunks_per_batch; ++c) {
      mass += chunk_mass[b * order.chunks_per_batch + c];
    }
    // mean over (head, position) of off / (F (F - 1)) == total mass / (rows * (F - 1))
    per_batch_cfi[b] = static_cast<float>(mass / (rows_per_batch * (p.num_frames - 1)));
  }
}

}  // namespace

void cross_frame_intensity(const CrossFrameProblem& problem, float* per_batch_cfi,
                           ParallelFor parallel_for) {
  if (problem.num_frames == 1) {  // no cross-frame pairs: CFI is 0 by definition
    std::fill(per_batch_cfi, per_batch_cfi + problem.batch, 0.f);
    return;
  }
  switch (problem.scalar_kind) {
    case ScalarKind::Float32:
      return run<Float32Operands, float>(problem, per_batch_cfi, parallel_for);
    case ScalarKind::Float16:
      return run<Float32Operands, c10::Half>(problem, per_batch_cfi, parallel_for);
    case ScalarKind::BFloat16:
#if defined(EAV_BF16_DOT)
      return run<BFloat16Operands, c10::BFloat16>(problem, per_batch_cfi, parallel_for);
#else
      return run<Float32Operands, c10::BFloat16>(problem, per_batch_cfi, parallel_for);
#endif
  }
}

}  // namespace eav::cpu::CPU_CAPABILITY
