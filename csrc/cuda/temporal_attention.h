// Launch interface of the CUDA temporal-attention-with-CFI kernels (docs/design.md,
// contract 2). Plain C++ plus the CUDA runtime types: included by the .cu that defines it and by
// the torch-facing launcher (.cpp).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "../temporal_attention_problem.h"

namespace eav::cuda {

// Number of float partials the launch writes: num_sequences * heads * ceil(num_frames / 16), the
// size of the `partials` device buffer the caller allocates.
int64_t temporal_attention_partial_count(const TemporalAttentionProblem& problem);

// Runs the attention kernel (writes problem.out) and the fixed-order reduction:
//   partials:         [partial_count] float32 device scratch (fully overwritten)
//   per_sequence_cfi: [problem.num_sequences] float32 device output (0 when num_frames == 1)
// compute_capability_major (8 for sm_80/86/89, 9 for sm_90) picks the tensor-core kernel (>= 8,
// fp16/bf16, head_dim and value_dim <= 256) or the SIMT kernel. Returns the first launch error.
cudaError_t launch_temporal_attention(const TemporalAttentionProblem& problem,
                                      int compute_capability_major, float* partials,
                                      float* per_sequence_cfi, cudaStream_t stream);

}  // namespace eav::cuda
