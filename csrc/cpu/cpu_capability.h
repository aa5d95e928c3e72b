// Which build of the CPU kernel runs here. Plain C++: no torch headers.
#pragma once

#include <string>

namespace eav::cpu {

// "AVX512_BF16", "AVX2" or "DEFAULT": the build of the CPU kernel that calls here run. It follows
// the capability PyTorch's own CPU kernels run at (torch.backends.cpu.get_cpu_capability()):
// ATEN_CPU_CAPABILITY=default|avx2|avx512 when set, else what the CPU supports, decided as torch
// decides it; AVX512 with the avx512_bf16 extension takes the AVX512_BF16 build. Decided once
// per process, like torch's.
const std::string& selected_kernel_capability();

}  // namespace eav::cpu
