// The compile-time switches of the CUDA launchers, written once for both kernels (the pattern of
// FlashAttention's static_switch.h): each macro turns a run-time value into a constexpr constant
// or a type alias named by the caller, visible inside the lambda it runs.
//
//   EAV_HALF_TYPE_SWITCH(p.scalar_kind, Element, [&] {
//     EAV_DIM_CHUNKS_SWITCH(p.head_dim, kDimChunks, [&] {
//       EAV_BOOL_SWITCH(vectorized, kVectorized, [&] { kernel<Element, kDimChunks, kVectorized><<<...>>>(...); });
//     });
//   });
//
// Also the host-side rules that pick an instantiation (ceil_div, 16-byte alignment of rows).
// Plain CUDA C++: no torch headers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "../cross_frame_problem.h"

// COND true or false -> `constexpr bool CONST_NAME`.
#define EAV_BOOL_SWITCH(COND, CONST_NAME, ...)  \
  [&] {                                         \
    if (COND) {                                 \
      constexpr static bool CONST_NAME = true;  \
      return __VA_ARGS__();                     \
    } else {                                    \
      constexpr static bool CONST_NAME = false; \
      return __VA_ARGS__();                     \
    }                                           \
  }()

// Head (or value) dims -> `constexpr int CONST_NAME` chunks of 32 dims held in registers per
// lane (query fragments: 8 registers per chunk; output accumulator: 16 floats per chunk). Three
// sizes cover the models' head dims (40, 64, 72, 128) without much padding; at most 256 dims.
#define EAV_DIM_CHUNKS_SWITCH(DIMS, CONST_NAME, ...) \
  [&] {                                              \
    if ((DIMS) <= 64) {                              \
      constexpr static int CONST_NAME = 2;           \
      return __VA_ARGS__();                          \
    } else if ((DIMS) <= 128) {                      \
      constexpr static int CONST_NAME = 4;           \
      return __VA_ARGS__();                          \
    } else {                                         \
      constexpr static int CONST_NAME = 8;           \
      return __VA_ARGS__();                          \
    }                                                \
  }()

// ScalarKind::BFloat16 or Float16 -> `using TYPE_NAME` = __nv_bfloat16 or __half (the
// tensor-core kernels; Float32 never takes them).
#define EAV_HALF_TYPE_SWITCH(KIND, TYPE_NAME, ...)        \
  [&] {                                                   \
    if ((KIND) == ::eav::ScalarKind::BFloat16) {          \
      using TYPE_NAME = __nv_bfloat16;                    \
      return __VA_ARGS__();                               \
    } else {                                              \
      using TYPE_NAME = __half;                           \
      return __VA_ARGS__();                               \
    }                                                     \
  }()

// Any ScalarKind -> `using TYPE_NAME` = float, __half or __nv_bfloat16 (the SIMT kernels).
#define EAV_SCALAR_TYPE_SWITCH(KIND, TYPE_NAME, ...) \
  [&] {                                              \
    switch (KIND) {                                  \
      case ::eav::ScalarKind::Float16: {             \
        using TYPE_NAME = __half;                    \
        return __VA_ARGS__();                        \
      }                                              \
      case ::eav::ScalarKind::BFloat16: {            \
        using TYPE_NAME = __nv_bfloat16;             \
        return __VA_ARGS__();                        \
      }                                              \
      default: {                                     \
        using TYPE_NAME = float;                     \
        return __VA_ARGS__();                        \
      }                                              \
    }                                                \
  }()

namespace eav::cuda {

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Whether every row of a [*, *, rows, dims] tensor of 16-bit elements starts 16-byte aligned and
// is contiguous: the base is aligned and the first three strides are multiples of 8 elements.
inline bool rows_aligned_16_bytes(const void* pointer, const int64_t (&strides)[4]) {
  return reinterpret_cast<uintptr_t>(pointer) % 16 == 0 && strides[0] % 8 == 0 &&
         strides[1] % 8 == 0 && strides[2] % 8 == 0 && strides[3] == 1;
}

// Whether the tensor-core kernels may load q and k 8 elements (16 bytes) at a time: head_dim a
// multiple of 8 and every q and k row aligned. Problem: CrossFrameProblem or
// TemporalAttentionProblem (both have query, key, their strides and head_dim).
template <typename Problem>
inline bool query_key_rows_vectorizable(const Problem& p) {
  return p.head_dim % 8 == 0 && rows_aligned_16_bytes(p.query, p.query_strides) &&
         rows_aligned_16_bytes(p.key, p.key_strides);
}

}  // namespace eav::cuda
