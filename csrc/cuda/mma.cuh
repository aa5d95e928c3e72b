// Tensor-core pieces of the CFI kernel: the m16n8k16 MMA (fp16/bf16 in, fp32 accumulate) and the
// loads that fill its fragments straight from global memory (no shared-memory staging).
//
// Fragment layout of mma.sync.m16n8k16 (PTX ISA, "Matrix fragments for mma.m16n8k16"), for lane
// = 4 * group + quad_lane:
//   A (16 x 16, row-major): reg0 = A[group][2q, 2q+1], reg1 = A[group+8][2q, 2q+1],
//                           reg2 = A[group][2q+8, 2q+9], reg3 = A[group+8][2q+8, 2q+9]
//   B (16 x 8, col-major):  reg0 = B[2q, 2q+1][group], reg1 = B[2q+8, 2q+9][group]
//   C (16 x 8, fp32):       c0, c1 = C[group][2q, 2q+1], c2, c3 = C[group+8][2q, 2q+1]
// Our A is 16 query frames x head_dim, our B is head_dim x 8 key frames: both are rows of q / k.
// A dot product does not care in which order the head dimension is summed, so the k-slots of the
// MMA may stand for any permutation of head dims as long as A and B use the same one. Each lane
// therefore loads 8 *consecutive* dims of its row (one 16-byte load) and spreads them over two
// MMAs: in a 32-dim chunk, lane q owns dims [8q, 8q + 8) = {x, y, z, w} (pairs); MMA 1 takes
// x (slot 2q) and y (slot 2q + 8), MMA 2 takes z and w. A and B lanes with the same q hold the same
// dims, so the slots match. One 16-byte load per row and chunk instead of four 4-byte ones.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace eav::cuda {

// c += a (16 x 16) * b (16 x 8); a: 4 regs, b: 2 regs, c: 4 fp32 (layouts above).
template <typename Element>
__device__ __forceinline__ void mma_m16n8k16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                             uint32_t a3, uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<Element, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    static_assert(std::is_same_v<Element, __half>, "mma_m16n8k16 takes __half or __nv_bfloat16");
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
#else
  // The host never launches the tensor-core kernel below sm_80 (it takes the SIMT kernel there).
  __trap();
#endif
}

// 8 consecutive 16-bit elements row[first_dim .. first_dim + 8) packed as 4 x (2 x 16 bit),
// dims >= head_dim and rows that are not there (valid == false) read as +0.
//   row: [head_dim] with stride dim_stride (elements); only read when valid.
// kVectorized: dim_stride == 1, head_dim % 8 == 0 and row 16-byte aligned (checked by the host),
// so the 8 elements are one 16-byte load; otherwise 8 scalar loads.
template <bool kVectorized>
__device__ __forceinline__ uint4 load_dim_group(const uint16_t* row, int64_t dim_stride,
                                                int first_dim, int head_dim, bool valid) {
  if constexpr (kVectorized) {
    if (!valid || first_dim >= head_dim) return make_uint4(0, 0, 0, 0);
    return __ldg(reinterpret_cast<const uint4*>(row + first_dim));
  } else {
    uint32_t packed[4] = {0, 0, 0, 0};
    if (valid) {
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int dim = first_dim + i;
        const uint32_t bits = dim < head_dim ? __ldg(row + dim * dim_stride) : 0u;
        packed[i / 2] |= bits << (16 * (i % 2));
      }
    }
    return make_uint4(packed[0], packed[1], packed[2], packed[3]);
  }
}

}  // namespace eav::cuda
