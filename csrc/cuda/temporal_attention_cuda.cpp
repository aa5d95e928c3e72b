// CUDA implementation of eav::temporal_attention_with_cfi, torch side: checks
// (make_temporal_attention_problem), device guard, current stream, output and scratch allocation,
// then the launch in temporal_attention.cu (raw pointers, strides and the stream only).

#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "../tensor_problem.h"
#include "temporal_attention.h"

namespace eav::cuda {
namespace {

// query: [N_seq, H, F, D], key: [N_seq, Hk, F, D], value: [N_seq, Hk, F, Dv] (CUDA, any strides)
// -> out [N_seq, H, F, Dv] (query's dtype), lse [N_seq, H, F] float32, cfi [N_seq] float32
std::tuple<at::Tensor, at::Tensor, at::Tensor> temporal_attention_with_cfi_cuda(
    const at::Tensor& query, const at::Tensor& key, const at::Tensor& value, double scale) {
  TemporalAttentionProblem problem = make_temporal_attention_problem(query, key, value, scale);
  TORCH_CHECK_VALUE(query.device().is_cuda(), "eav: the CUDA kernel got a ", query.device(),
                    " tensor");
  TORCH_CHECK_VALUE(problem.num_sequences <= INT32_MAX && problem.num_frames <= INT32_MAX &&
                        problem.head_dim <= INT32_MAX && problem.value_dim <= INT32_MAX,
                    "eav: sequences (", problem.num_sequences, "), frames (", problem.num_frames,
                    "), head_dim (", problem.head_dim, ") and value_dim (", problem.value_dim,
                    ") must fit in 32 bits");
  const c10::cuda::CUDAGuard device_guard(query.device());
  int compute_capability_major = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&compute_capability_major,
                                        cudaDevAttrComputeCapabilityMajor, query.get_device()));

  at::Tensor out = at::empty({problem.num_sequences, problem.heads, problem.num_frames,
                              problem.value_dim}, query.options());
  const auto float_options = query.options().dtype(at::kFloat);
  at::Tensor lse = at::empty({problem.num_sequences, problem.heads, problem.num_frames}, float_options);
  at::Tensor cfi = at::empty({problem.num_sequences}, float_options);
  at::Tensor partials = at::empty({temporal_attention_partial_count(problem)}, float_options);
  problem.out = out.data_ptr();
  problem.lse = lse.data_ptr<float>();
  for (int dim = 0; dim < 4; ++dim) problem.out_strides[dim] = out.stride(dim);

  const cudaError_t error =
      launch_temporal_attention(problem, compute_capability_major, partials.data_ptr<float>(),
                                cfi.data_ptr<float>(), c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(error == cudaSuccess, "eav: CUDA temporal_attention_with_cfi launch failed: ",
              cudaGetErrorString(error));
  return {out, lse, cfi};
}

}  // namespace

TORCH_LIBRARY_IMPL(eav, CUDA, m) {
  m.impl("temporal_attention_with_cfi", &temporal_attention_with_cfi_cuda);
}

}  // namespace eav::cuda
