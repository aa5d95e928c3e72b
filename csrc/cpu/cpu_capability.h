#pragma once

#include <string>

namespace eav::cpu {

// "AVX2" or "DEFAULT": the build of the CPU kernel that calls on this machine run.
std::string selected_kernel_capability();

}  // namespace eav::cpu
