// CPU implementation of eav::cross_frame_intensity: checks, then the kernel build for this CPU
// (cpu_capability.h: the capability PyTorch itself runs at, so ATEN_CPU_CAPABILITY=default
// selects the portable one), on torch's threads.

#include "../tensor_problem.h"
#include "../torch_stable.h"
#include "cpu_capability.h"
#include "cross_frame_intensity_kernel.h"

namespace eav::cpu {
namespace {

// query: [B, H, F * S, D], key: [B, Hk, F * S, D] -> [B] float32 per-batch CFI
Tensor cross_frame_intensity_cpu(const Tensor& query, const Tensor& key, int64_t num_frames,
                                 double scale) {
  const CrossFrameProblem problem = make_cross_frame_problem(query, key, num_frames, scale);
  EAV_CHECK(query.is_cpu(), "eav: the CPU kernel got a ", device_string(query.device()),
            " tensor");
  EAV_CHECK(num_frames <= kMaxFrames, "eav: num_frames (", num_frames,
            ") exceeds the CPU kernel's maximum (", kMaxFrames, ")");
  Tensor per_batch_cfi = torch::stable::new_empty(query, {problem.batch}, ScalarType::Float);
  float* out = static_cast<float*>(per_batch_cfi.data_ptr());
#if defined(EAV_HAVE_X86_KERNELS)
  const std::string& capability = selected_kernel_capability();
  if (capability == "AVX512_BF16") {
    AVX512_BF16::cross_frame_intensity(problem, out, &torch_parallel_for);
  } else if (capability == "AVX2") {
    AVX2::cross_frame_intensity(problem, out, &torch_parallel_for);
  } else {
    DEFAULT::cross_frame_intensity(problem, out, &torch_parallel_for);
  }
#else
  DEFAULT::cross_frame_intensity(problem, out, &torch_parallel_for);
#endif
  return per_batch_cfi;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(eav, CPU, m) {
  m.impl("cross_frame_intensity", TORCH_BOX(&cross_frame_intensity_cpu));
}

}  // namespace eav::cpu
