// CPU implementation of eav::cross_frame_intensity: checks, picks the kernel build for this CPU
// (the capability PyTorch itself runs at, so ATEN_CPU_CAPABILITY=default selects the portable one).

#include <ATen/Version.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include "../tensor_problem.h"
#include "cross_frame_intensity_kernel.h"
#include "cpu_capability.h"

namespace eav::cpu {

std::string selected_kernel_capability() {
#if defined(EAV_HAVE_X86_KERNELS)
  // The capability PyTorch runs at (it honours ATEN_CPU_CAPABILITY=default|avx2|avx512).
  const std::string torch_capability = at::get_cpu_capability();
  if (torch_capability == "AVX512" && __builtin_cpu_supports("avx512bf16")) return "AVX512_BF16";
  if (torch_capability == "AVX2" || torch_capability == "AVX512") return "AVX2";
#endif
  return "DEFAULT";
}

namespace {

// query: [B, H, F * S, D], key: [B, Hk, F * S, D] -> [B] float32 per-batch CFI
at::Tensor cross_frame_intensity_cpu(const at::Tensor& query, const at::Tensor& key,
                                     int64_t num_frames, double scale) {
  const CrossFrameProblem problem = make_cross_frame_problem(query, key, num_frames, scale);
  TORCH_CHECK_VALUE(query.device().is_cpu(), "eav: the CPU kernel got a ", query.device(),
                    " tensor");
  // Each thread keeps one position's F x F logits (4 * F^2 bytes) as scratch: cap F so that a
  // nonsensical frame count (e.g. num_frames == tokens of a long sequence) is an error, not a
  // multi-GiB allocation per thread. 16384 frames = 1 GiB; real models use F <= 64.
  constexpr int64_t kMaxFrames = 16384;
  TORCH_CHECK_VALUE(num_frames <= kMaxFrames, "eav: num_frames (", num_frames,
                    ") exceeds the CPU kernel's maximum (", kMaxFrames, ")");
  at::Tensor per_batch_cfi = at::empty({problem.batch}, query.options().dtype(at::kFloat));
  float* out = per_batch_cfi.data_ptr<float>();
#if defined(EAV_HAVE_X86_KERNELS)
  const std::string capability = selected_kernel_capability();
  if (capability == "AVX512_BF16") {
    AVX512_BF16::cross_frame_intensity(problem, out);
  } else if (capability == "AVX2") {
    AVX2::cross_frame_intensity(problem, out);
  } else {
    DEFAULT::cross_frame_intensity(problem, out);
  }
#else
  DEFAULT::cross_frame_intensity(problem, out);
#endif
  return per_batch_cfi;
}

}  // namespace

TORCH_LIBRARY_IMPL(eav, CPU, m) {
  m.impl("cross_frame_intensity", &cross_frame_intensity_cpu);
}

}  // namespace eav::cpu
