// The fused CPU cross-frame-intensity kernel, compiled once per CPU capability
// (cross_frame_intensity_kernel.cpp is built as DEFAULT, AVX2 and AVX512_BF16; see
// csrc/build_manifest.txt). Plain C++: the kernel uses torch's header-only at::vec but no symbol
// of libtorch, so the thread pool comes in as an argument.
#pragma once

#include <cstdint>
#include <functional>

#include "../cross_frame_problem.h"

namespace eav::cpu {

// Runs body(chunk_begin, chunk_end) over [begin, end) split into ranges of at least grain_size,
// on the caller's threads (torch's pool: eav::torch_parallel_for in torch_stable.h).
using ParallelFor = void (*)(int64_t begin, int64_t end, int64_t grain_size,
                             const std::function<void(int64_t, int64_t)>& body);

// The largest num_frames the CPU ops take. Each thread keeps one position's (or sequence-head's)
// F x F logits (4 * F^2 bytes) as scratch: a nonsensical frame count (e.g. num_frames == tokens of
// a long sequence) is an error, not a multi-GiB allocation per thread. 16384 frames = 1 GiB;
// real models use F <= 64.
constexpr int64_t kMaxFrames = 16384;

// Positions of one (batch, head) handled by one work chunk. The chunking is independent of the
// thread count and the chunk sums are reduced in a fixed order, so results are bitwise identical
// for any number of threads.
constexpr int64_t kPositionsPerChunk = 16;

// per_batch_cfi: [batch] float32, written with the mean over (head, position) of the
// off-diagonal mass of each F x F temporal softmax divided by F * (F - 1).
#define EAV_DECLARE_CPU_KERNEL(capability)                                         \
  namespace capability {                                                           \
  void cross_frame_intensity(const CrossFrameProblem& problem, float* per_batch_cfi, \
                             ParallelFor parallel_for);                            \
  }
EAV_DECLARE_CPU_KERNEL(DEFAULT)
EAV_DECLARE_CPU_KERNEL(AVX2)
EAV_DECLARE_CPU_KERNEL(AVX512_BF16)
#undef EAV_DECLARE_CPU_KERNEL

}  // namespace eav::cpu
