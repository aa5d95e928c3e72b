// CUDA implementation of eav::temporal_attention_with_cfi, torch side: checks
// (make_temporal_attention_problem, CudaLaunch), output and scratch allocation, then the launch in
// temporal_attention.cu (raw pointers, strides and the stream only).

#include <tuple>

#include "../tensor_problem.h"
#include "../torch_stable.h"
#include "launch_preamble.h"
#include "temporal_attention.h"

namespace eav::cuda {
namespace {

// query: [N_seq, H, F, D], key: [N_seq, Hk, F, D], value: [N_seq, Hk, F, Dv] (CUDA, any strides)
// -> out [N_seq, H, F, Dv] (query's dtype), cfi [N_seq] float32
std::tuple<Tensor, Tensor> temporal_attention_with_cfi_cuda(const Tensor& query,
                                                            const Tensor& key,
                                                            const Tensor& value,
                                                            double scale) {
  TemporalAttentionProblem problem = make_temporal_attention_problem(query, key, value, scale);
  const CudaLaunch launch(query, "temporal_attention_with_cfi",
                          {{"sequences", problem.num_sequences},
                           {"frames", problem.num_frames},
                           {"head_dim", problem.head_dim},
                           {"value_dim", problem.value_dim}});
  Tensor out = torch::stable::new_empty(
      query, {problem.num_sequences, problem.heads, problem.num_frames, problem.value_dim});
  Tensor cfi = torch::stable::new_empty(query, {problem.num_sequences}, ScalarType::Float);
  Tensor partials = torch::stable::new_empty(query, {temporal_attention_partial_count(problem)},
                                             ScalarType::Float);
  problem.out = out.data_ptr();
  for (int dim = 0; dim < 4; ++dim) problem.out_strides[dim] = out.stride(dim);
  check_cuda(launch_temporal_attention(problem, launch.compute_capability_major(),
                                       static_cast<float*>(partials.data_ptr()),
                                       static_cast<float*>(cfi.data_ptr()), launch.stream()),
             "CUDA temporal_attention_with_cfi launch");
  return {out, cfi};
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(eav, CUDA, m) {
  m.impl("temporal_attention_with_cfi", TORCH_BOX(&temporal_attention_with_cfi_cuda));
}

}  // namespace eav::cuda
