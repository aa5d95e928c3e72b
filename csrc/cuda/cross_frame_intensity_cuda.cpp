// CUDA implementation of eav::cross_frame_intensity, torch side: checks (make_cross_frame_problem),
// device guard, current stream, scratch and output allocation, then the launch in
// cross_frame_intensity.cu (which sees raw pointers, strides and the stream only).

// c10/cuda headers only (c10::cuda::getCurrentCUDAStream is what at::cuda::getCurrentCUDAStream
// forwards to): ATen/cuda/CUDAContext.h would pull in cuBLAS/cuSPARSE headers we do not use.
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../tensor_problem.h"
#include "cross_frame_intensity_cuda.h"

namespace eav::cuda {
namespace {

// query: [B, H, F * S, D], key: [B, Hk, F * S, D] (CUDA, any strides) -> [B] float32 per-batch CFI
at::Tensor cross_frame_intensity_cuda(const at::Tensor& query, const at::Tensor& key,
                                      int64_t num_frames, double scale) {
  const CrossFrameProblem problem = make_cross_frame_problem(query, key, num_frames, scale);
  TORCH_CHECK_VALUE(query.device().is_cuda(), "eav: the CUDA kernel got a ", query.device(),
                    " tensor");
  const c10::cuda::CUDAGuard device_guard(query.device());
  int compute_capability_major = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&compute_capability_major,
                                        cudaDevAttrComputeCapabilityMajor, query.get_device()));
  const int64_t partial_count =
      cross_frame_intensity_partial_count(problem, compute_capability_major);
  TORCH_CHECK_VALUE(partial_count <= INT32_MAX, "eav: batch * heads * ceil(spatial / 8) (",
                    partial_count, ") exceeds the CUDA grid limit (", INT32_MAX, ")");
  TORCH_CHECK_VALUE(num_frames <= INT32_MAX && problem.head_dim <= INT32_MAX,
                    "eav: num_frames (", num_frames, ") and head_dim (", problem.head_dim,
                    ") must fit in 32 bits");

  const auto float_options = query.options().dtype(at::kFloat);
  at::Tensor per_batch_cfi = at::empty({problem.batch}, float_options);
  at::Tensor partials = at::empty({num_frames > 1 ? partial_count : 0}, float_options);
  const cudaError_t error = launch_cross_frame_intensity(
      problem, compute_capability_major, partials.data_ptr<float>(), per_batch_cfi.data_ptr<float>(),
      c10::cuda::getCurrentCUDAStream());
  TORCH_CHECK(error == cudaSuccess, "eav: CUDA cross_frame_intensity launch failed: ",
              cudaGetErrorString(error));
  return per_batch_cfi;
}

}  // namespace

TORCH_LIBRARY_IMPL(eav, CUDA, m) {
  m.impl("cross_frame_intensity", &cross_frame_intensity_cuda);
}

}  // namespace eav::cuda
