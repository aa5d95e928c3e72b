// Launch interface of the CUDA cross-frame-intensity kernels. Plain C++ plus the CUDA runtime
// types: included by the .cu that defines it and by the torch-facing launcher (.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../cross_frame_problem.h"

namespace eav::cuda {

// Number of float partials the launch writes (one per thread block of either kernel): the size of
// the `partials` buffer the caller allocates on the device.
int64_t cross_frame_intensity_partial_count(const CrossFrameProblem& problem);

// Runs the CFI kernel and the fixed-order reduction on `stream`. `compute_capability_major` is
// the device's (8 for sm_80/86/89, 9 for sm_90): it picks the tensor-core kernel (>= 8) or the
// SIMT kernel.
//   partials:      [partial_count] float32 device scratch (fully overwritten)
//   per_batch_cfi: [problem.batch] float32 device output
// Returns the first launch error (cudaSuccess when both kernels were enqueued).
cudaError_t launch_cross_frame_intensity(const CrossFrameProblem& problem,
                                         int compute_capability_major, float* partials,
                                         float* per_batch_cfi, cudaStream_t stream);

}  // namespace eav::cuda
