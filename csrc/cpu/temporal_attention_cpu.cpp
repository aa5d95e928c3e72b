// CPU implementation of eav::temporal_attention_with_cfi (docs/design.md, contract 2): the
// CPU twin of the CUDA kernel, correctness first. Per sequence and head: q, k, v widened to fp32
// scratch, the F x F logits in fp32 scratch (one sequence-head at a time per thread), softmax rows
// with the diagonal and off-diagonal sums kept apart (off / (off + diag): no cancellation on
// strongly diagonal rows), P V in fp32, the output rounded once to the input dtype.
// Sequences are split over torch's threads (stable parallel_for); each sequence's CFI is summed in
// double in a fixed order by one thread, so results do not depend on the thread count.

#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Half.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "../tensor_problem.h"
#include "../torch_stable.h"
#include "cross_frame_intensity_kernel.h"

namespace eav::cpu {
namespace {

// Rows [frames, dims] of one (sequence, head) of a strided tensor, widened to fp32 (row-major).
template <typename Element>
void widen(const Element* base, int64_t frame_stride, int64_t dim_stride, int64_t frames,
           int64_t dims, float* out) {
  for (int64_t f = 0; f < frames; ++f) {
    const Element* row = base + f * frame_stride;
    for (int64_t d = 0; d < dims; ++d) out[f * dims + d] = static_cast<float>(row[d * dim_stride]);
  }
}

template <typename Element>
void temporal_attention(const TemporalAttentionProblem& p, float* per_sequence_cfi) {
  const int64_t frames = p.num_frames;
  const int64_t head_dim = p.head_dim;
  const int64_t value_dim = p.value_dim;
  const int64_t group = p.heads / p.kv_heads;
  const float scale = p.scale;
  // ~1 MFLOP per task at least: small sequences are batched, large ones run one per task.
  const int64_t work = std::max<int64_t>(1, p.heads * frames * frames * (head_dim + value_dim));
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / work);
  torch::stable::parallel_for(0, p.num_sequences, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> query(frames * head_dim), key(frames * head_dim), value(frames * value_dim);
    std::vector<float> logits(frames * frames), row_out(value_dim);
    for (int64_t sequence = begin; sequence < end; ++sequence) {
      double mass = 0.0;  // sum over heads and rows of the off-diagonal mass
      int64_t loaded_kv_head = -1;
      for (int64_t h = 0; h < p.heads; ++h) {
        const int64_t kv_head = h / group;
        widen(static_cast<const Element*>(p.query) + sequence * p.query_strides[0] +
                  h * p.query_strides[1],
              p.query_strides[2], p.query_strides[3], frames, head_dim, query.data());
        if (kv_head != loaded_kv_head) {
          widen(static_cast<const Element*>(p.key) + sequence * p.key_strides[0] +
                    kv_head * p.key_strides[1],
                p.key_strides[2], p.key_strides[3], frames, head_dim, key.data());
          widen(static_cast<const Element*>(p.value) + sequence * p.value_strides[0] +
                    kv_head * p.value_strides[1],
                p.value_strides[2], p.value_strides[3], frames, value_dim, value.data());
          loaded_kv_head = kv_head;
        }
        Element* out = static_cast<Element*>(p.out) + sequence * p.out_strides[0] + h * p.out_strides[1];
        for (int64_t t = 0; t < frames; ++t) {
          const float* q = query.data() + t * head_dim;
          float* row = logits.data() + t * frames;
          float max_logit = -std::numeric_limits<float>::infinity();
          for (int64_t j = 0; j < frames; ++j) {
            const float* k = key.data() + j * head_dim;
            float dot = 0.f;
            for (int64_t d = 0; d < head_dim; ++d) dot += q[d] * k[d];
            row[j] = dot * scale;
            max_logit = std::max(max_logit, row[j]);
          }
          float off = 0.f;
          float diag = 0.f;
          std::fill(row_out.begin(), row_out.end(), 0.f);
          for (int64_t j = 0; j < frames; ++j) {
            const float weight = std::exp(row[j] - max_logit);
            (j == t ? diag : off) += weight;
            const float* v = value.data() + j * value_dim;
            for (int64_t d = 0; d < value_dim; ++d) row_out[d] += weight * v[d];
          }
          const float total = off + diag;
          Element* out_row = out + t * p.out_strides[2];
          for (int64_t d = 0; d < value_dim; ++d) {
            out_row[d * p.out_strides[3]] = static_cast<Element>(row_out[d] / total);
          }
          mass += off / total;
        }
      }
      per_sequence_cfi[sequence] =
          frames == 1 ? 0.f
                      : static_cast<float>(mass / (static_cast<double>(p.heads) * frames * (frames - 1)));
    }
  });
}

// query: [N_seq, H, F, D], key: [N_seq, Hk, F, D], value: [N_seq, Hk, F, Dv] (CPU, any strides)
// -> out [N_seq, H, F, Dv] (query's dtype), cfi [N_seq] float32
std::tuple<Tensor, Tensor> temporal_attention_with_cfi_cpu(const Tensor& query,
                                                           const Tensor& key,
                                                           const Tensor& value,
                                                           double scale) {
  TemporalAttentionProblem problem = make_temporal_attention_problem(query, key, value, scale);
  EAV_CHECK(query.is_cpu(), "eav: the CPU kernel got a ", device_string(query.device()),
            " tensor");
  EAV_CHECK(problem.num_frames <= kMaxFrames, "eav: num_frames (", problem.num_frames,
            ") exceeds the CPU kernel's maximum (", kMaxFrames, ")");
  Tensor out = torch::stable::new_empty(
      query, {problem.num_sequences, problem.heads, problem.num_frames, problem.value_dim});
  Tensor cfi = torch::stable::new_empty(query, {problem.num_sequences}, ScalarType::Float);
  problem.out = out.data_ptr();
  for (int dim = 0; dim < 4; ++dim) problem.out_strides[dim] = out.stride(dim);
  float* per_sequence_cfi = static_cast<float*>(cfi.data_ptr());
  switch (problem.scalar_kind) {
    case ScalarKind::Float32:
      temporal_attention<float>(problem, per_sequence_cfi);
      break;
    case ScalarKind::Float16:
      temporal_attention<torch::headeronly::Half>(problem, per_sequence_cfi);
      break;
    case ScalarKind::BFloat16:
      temporal_attention<torch::headeronly::BFloat16>(problem, per_sequence_cfi);
      break;
  }
  return {out, cfi};
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(eav, CPU, m) {
  m.impl("temporal_attention_with_cfi", TORCH_BOX(&temporal_attention_with_cfi_cpu));
}

}  // namespace eav::cpu
