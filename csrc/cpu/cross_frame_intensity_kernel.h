// The fused CPU cross-frame-intensity kernel, compiled once per CPU capability
// (cross_frame_intensity_kernel.cpp is built as DEFAULT, AVX2 and AVX512_BF16; see CMakeLists.txt).
#pragma once

#include "../cross_frame_problem.h"

namespace eav::cpu {

// Positions of one (batch, head) handled by one work chunk. The chunking is independent of the
// thread count and the chunk sums are reduced in a fixed order, so results are bitwise identical
// for any number of threads.
constexpr int64_t kPositionsPerChunk = 16;

// per_batch_cfi: [batch] float32, written with the mean over (head, position) of the
// off-diagonal mass of each F x F temporal softmax divided by F * (F - 1).
#define EAV_DECLARE_CPU_KERNEL(capability)                                          \
  namespace capability {                                                            \
  void cross_frame_intensity(const CrossFrameProblem& problem, float* per_batch_cfi); \
  }
EAV_DECLARE_CPU_KERNEL(DEFAULT)
EAV_DECLARE_CPU_KERNEL(AVX2)
EAV_DECLARE_CPU_KERNEL(AVX512_BF16)
#undef EAV_DECLARE_CPU_KERNEL

}  // namespace eav::cpu
