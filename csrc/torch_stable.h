// The one door from our torch-facing code (op registration, the CPU ops, the CUDA launchers) to
// torch: LibTorch's stable ABI (torch/csrc/stable, torch/headeronly) only, compiled for the torch
// version in TORCH_TARGET_VERSION (set by the build from csrc/build_manifest.txt), so that one
// binary loads in every torch from that version on. c10/ATen headers refuse to compile next to
// TORCH_TARGET_VERSION, which keeps the rest of libtorch's C++ API out of these files.
//
// Also what a check needs to say what is wrong with the numbers in it: EAV_CHECK and the
// formatting of shapes and devices (c10's operator<< is not part of the stable ABI).
#pragma once

#ifndef TORCH_TARGET_VERSION
#error "eav: torch-facing sources are built with -DTORCH_TARGET_VERSION (see csrc/build_manifest.txt)"
#endif

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>

#include <cstdint>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>

namespace eav {

using torch::stable::Tensor;
using torch::headeronly::ScalarType;

// Throws std::invalid_argument with the arguments streamed into its message. Only std exceptions
// cross the stable ABI; torch turns this one into a Python ValueError (every other one into a
// RuntimeError), so every bad input to our ops is a ValueError.
template <typename... Args>
[[noreturn]] void throw_invalid_argument(const Args&... args) {
  std::ostringstream message;
  (message << ... << args);
  throw std::invalid_argument(message.str());
}

#define EAV_CHECK(condition, ...)                                   \
  do {                                                              \
    if (!(condition)) ::eav::throw_invalid_argument(__VA_ARGS__);   \
  } while (false)

// "[2, 3, 12, 8]", as torch prints sizes and strides.
inline std::string dims_string(torch::headeronly::IntHeaderOnlyArrayRef dims) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < dims.size(); ++i) out << (i ? ", " : "") << dims[i];
  out << ']';
  return out.str();
}

// "cpu", "cuda:1", "meta", as torch prints devices (other device types by number).
inline std::string device_string(const torch::stable::Device& device) {
  std::ostringstream out;
  switch (device.type()) {
    case torch::headeronly::DeviceType::CPU:
      out << "cpu";
      break;
    case torch::headeronly::DeviceType::CUDA:
      out << "cuda";
      break;
    case torch::headeronly::DeviceType::Meta:
      out << "meta";
      break;
    default:
      out << "device type " << static_cast<int>(device.type());
  }
  if (device.has_index()) out << ':' << static_cast<int>(device.index());
  return out.str();
}

// torch's thread pool (at::parallel_for through the stable ABI), in the form the CPU kernels take
// it (csrc/cpu/cross_frame_intensity_kernel.h): they never call into libtorch themselves.
inline void torch_parallel_for(int64_t begin, int64_t end, int64_t grain_size,
                               const std::function<void(int64_t, int64_t)>& body) {
  torch::stable::parallel_for(begin, end, grain_size, body);
}

}  // namespace eav
