// CUDA implementation of eav::cross_frame_intensity, torch side: checks (make_cross_frame_problem,
// CudaLaunch), scratch and output allocation, then the launch in cross_frame_intensity.cu (which
// sees raw pointers, strides and the stream only).

#include "../tensor_problem.h"
#include "../torch_stable.h"
#include "cross_frame_intensity_cuda.h"
#include "launch_preamble.h"

namespace eav::cuda {
namespace {

// query: [B, H, F * S, D], key: [B, Hk, F * S, D] (CUDA, any strides) -> [B] float32 per-batch CFI
Tensor cross_frame_intensity_cuda(const Tensor& query, const Tensor& key, int64_t num_frames,
                                  double scale) {
  const CrossFrameProblem problem = make_cross_frame_problem(query, key, num_frames, scale);
  const int64_t partial_count = cross_frame_intensity_partial_count(problem);
  const CudaLaunch launch(query, "cross_frame_intensity",
                          {{"batch * heads * ceil(spatial / 8)", partial_count},
                           {"num_frames", num_frames},
                           {"head_dim", problem.head_dim}});
  Tensor per_batch_cfi = torch::stable::new_empty(query, {problem.batch}, ScalarType::Float);
  Tensor partials = torch::stable::new_empty(query, {num_frames > 1 ? partial_count : 0},
                                             ScalarType::Float);
  check_cuda(launch_cross_frame_intensity(problem, launch.compute_capability_major(),
                                          static_cast<float*>(partials.data_ptr()),
                                          static_cast<float*>(per_batch_cfi.data_ptr()),
                                          launch.stream()),
             "CUDA cross_frame_intensity launch");
  return per_batch_cfi;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(eav, CUDA, m) {
  m.impl("cross_frame_intensity", TORCH_BOX(&cross_frame_intensity_cuda));
}

}  // namespace eav::cuda
