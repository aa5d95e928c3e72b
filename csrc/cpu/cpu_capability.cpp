// The CPU capability rule of PyTorch (aten/src/ATen/native/DispatchStub.cpp,
// compute_cpu_capability), which is not part of the stable ABI, mirrored for the x86-64 builds
// of our kernel; tests/test_info.py checks that the two agree.

#include "cpu_capability.h"

#include <cstdlib>
#include <cstring>

namespace eav::cpu {
namespace {

#if defined(EAV_HAVE_X86_KERNELS)
bool cpu_has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

bool cpu_has_avx512() {  // torch's AVX512 capability: VL, BW, DQ and FMA
  return __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
}

// "AVX512", "AVX2" or "DEFAULT", as torch.backends.cpu.get_cpu_capability() says.
const char* torch_cpu_capability() {
  if (const char* forced = std::getenv("ATEN_CPU_CAPABILITY")) {
    if (std::strcmp(forced, "avx512") == 0) return "AVX512";
    if (std::strcmp(forced, "avx2") == 0) return "AVX2";
    if (std::strcmp(forced, "default") == 0) return "DEFAULT";
    // torch warns about any other value and ignores it: so do we (silently).
  }
  if (cpu_has_avx512()) return "AVX512";
  if (cpu_has_avx2()) return "AVX2";
  return "DEFAULT";
}
#endif

std::string compute_kernel_capability() {
#if defined(EAV_HAVE_X86_KERNELS)
  const std::string torch_capability = torch_cpu_capability();
  // A forced capability is taken only where the CPU has it (torch would crash otherwise).
  if (torch_capability == "AVX512" && cpu_has_avx512() && __builtin_cpu_supports("avx512bf16")) {
    return "AVX512_BF16";
  }
  if ((torch_capability == "AVX2" || torch_capability == "AVX512") && cpu_has_avx2()) {
    return "AVX2";
  }
#endif
  return "DEFAULT";
}

}  // namespace

const std::string& selected_kernel_capability() {
  static const std::string capability = compute_kernel_capability();
  return capability;
}

}  // namespace eav::cpu
