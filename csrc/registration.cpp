// The eav op library (schemas) and the eav_kernels._C Python module (build information).
// Backends register implementations with TORCH_LIBRARY_IMPL next to their kernels.

#include <ATen/Parallel.h>
#include <torch/extension.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>

#include "cpu/cpu_capability.h"

#ifndef EAV_CUDA_ARCHS
#define EAV_CUDA_ARCHS ""
#endif

TORCH_LIBRARY(eav, m) {
  // query: [B, H, F*S, D], key: [B, Hk, F*S, D] (frame-major video tokens, any strides)
  // -> [B] float32: per batch element, mean over (head, position) of the off-diagonal mass of the
  //    F x F temporal softmax of scale * q k^T, divided by F (F - 1). 0 when num_frames == 1.
  m.def("cross_frame_intensity(Tensor query, Tensor key, int num_frames, float scale) -> Tensor");
  // query: [N_seq, H, F, D], key: [N_seq, Hk, F, D], value: [N_seq, Hk, F, Dv] (a batch of N_seq
  // sequences of F frames, any strides; query head h reads key/value head h / (H / Hk))
  // -> out [N_seq, H, F, Dv] in the inputs' dtype: softmax(scale * q k^T) v, non-causal, unmasked;
  //    lse [N_seq, H, F] float32: natural log-sum-exp of each row's scaled logits;
  //    cfi [N_seq] float32: per sequence, mean over heads and rows of the off-diagonal softmax
  //    mass divided by F - 1 (i.e. the sum over heads / (H F (F - 1))); 0 when F == 1.
  m.def("temporal_attention_with_cfi(Tensor query, Tensor key, Tensor value, float scale) -> "
        "(Tensor out, Tensor lse, Tensor cfi)");
}

namespace {

bool built_with_openmp() {
#if defined(_OPENMP)
  return true;
#else
  return false;
#endif
}

// How many threads an at::parallel_for region compiled into this extension really uses.
int64_t parallel_region_threads() {
  std::atomic<int64_t> threads{0};
  at::parallel_for(0, 1 << 12, 1, [&](int64_t, int64_t) {
    const int64_t mine = at::get_thread_num() + 1;
    int64_t seen = threads.load();
    while (mine > seen && !threads.compare_exchange_weak(seen, mine)) {
    }
  });
  return threads.load();
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.doc() = "eav-kernels compiled ops (registered as torch.ops.eav.*) and build information";
  module.def("built_with_openmp", &built_with_openmp,
             "True when the CPU kernels were compiled with OpenMP (multi-threaded).");
  module.def("parallel_region_threads", &parallel_region_threads,
             "Threads used by a parallel region of this extension at the current setting.");
  module.def("cpu_kernel_capability", &eav::cpu::selected_kernel_capability,
             "Build of the CPU kernel in use here: 'AVX512_BF16', 'AVX2' or 'DEFAULT'.");
  module.def("cuda_archs", []() { return std::string(EAV_CUDA_ARCHS); },
             "CUDA architectures the extension was compiled for ('' when CUDA was not built).");
}
