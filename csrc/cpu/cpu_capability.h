#pragma once

#include <string>

namespace eav::cpu {

// "AVX512_BF16", "AVX2" or "DEFAULT": the build of the CPU kernel that calls here run.
std::string selected_kernel_capability();

}  // namespace eav::cpu
