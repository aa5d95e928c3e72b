// Deterministic reductions: fixed shuffle trees and fixed shared-memory orders, no atomics, so a
// result does not depend on scheduling and repeated calls are bitwise equal.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace eav::cuda {

// Butterfly all-reduce over the 4 lanes of a quad (lanes 4g .. 4g + 3). Every lane ends with the
// same bits: each step adds the same two values (a + b == b + a exactly).
__device__ __forceinline__ float quad_sum(float value) {
  value += __shfl_xor_sync(0xffffffffu, value, 1);
  value += __shfl_xor_sync(0xffffffffu, value, 2);
  return value;
}

__device__ __forceinline__ float quad_max(float value) {
  value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 1));
  value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, 2));
  return value;
}

// Butterfly all-reduce over a whole warp (same bits on every lane, as above).
__device__ __forceinline__ float warp_sum(float value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

__device__ __forceinline__ float to_float(float value) { return value; }
__device__ __forceinline__ float to_float(__half value) { return __half2float(value); }
__device__ __forceinline__ float to_float(__nv_bfloat16 value) { return __bfloat162float(value); }

// fp32 dot product of two rows of `length` elements (element strides a_stride, b_stride): lane
// takes dims lane, lane + 32, ... with fmaf, then the warp all-reduce (same bits on every lane).
template <typename Element>
__device__ __forceinline__ float warp_dot(const Element* a, int64_t a_stride, const Element* b,
                                          int64_t b_stride, int64_t length) {
  float dot = 0.f;
  for (int64_t dim = threadIdx.x % 32; dim < length; dim += 32) {
    dot = fmaf(to_float(a[dim * a_stride]), to_float(b[dim * b_stride]), dot);
  }
  return warp_sum(dot);
}

// Sum of `value` over the kWarps * 32 threads of the block, valid on thread 0: a warp tree, then
// the warp sums added in warp order by thread 0.
template <int kWarps>
__device__ __forceinline__ float block_sum(float value) {
  __shared__ float warp_sums[kWarps];
  value = warp_sum(value);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = value;
  __syncthreads();
  float total = 0.f;
  if (threadIdx.x == 0) {
#pragma unroll
    for (int w = 0; w < kWarps; ++w) total += warp_sums[w];
  }
  return total;
}

// out[b] = (sum of the `per_output` partials of output b) / divisor, the sum taken in double in a
// fixed order (thread-strided, then a shared-memory tree). One block of kThreads per output.
//   partials: [outputs, per_output] float32
//   out:      [outputs] float32
template <int kThreads>
__global__ void __launch_bounds__(kThreads)
    reduce_partials_kernel(const float* __restrict__ partials, int64_t per_output, double divisor,
                           float* __restrict__ out) {
  __shared__ double sums[kThreads];
  const float* own = partials + static_cast<int64_t>(blockIdx.x) * per_output;
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < per_output; i += kThreads) sum += own[i];
  sums[threadIdx.x] = sum;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) sums[threadIdx.x] += sums[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[blockIdx.x] = static_cast<float>(sums[0] / divisor);
}

}  // namespace eav::cuda
