// What both CUDA launchers (cross_frame_intensity_cuda.cpp, temporal_attention_cuda.cpp) do before
// a launch, written once: the tensor is on a CUDA device, the sizes the kernels index with 32-bit
// ints fit, the device guard, the device's compute capability and torch's current stream.
// Torch side through the stable ABI only (torch_stable.h) plus the CUDA runtime.
#pragma once

#include <cuda_runtime_api.h>
#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/csrc/stable/accelerator.h>

#include <climits>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <utility>

#include "../torch_stable.h"

#ifndef USE_CUDA
#error "eav: the CUDA launchers are built with -DUSE_CUDA (torch's CUDA stream API in shim.h)"
#endif

namespace eav::cuda {

// A size a kernel indexes with a 32-bit int, by name: {"num_frames", problem.num_frames}.
using NamedSize = std::pair<const char*, int64_t>;

// Throws std::runtime_error (Python RuntimeError) naming the CUDA error and what failed.
inline void check_cuda(cudaError_t error, const char* what) {
  if (error != cudaSuccess) {
    throw std::runtime_error(std::string("eav: ") + what + " failed: " + cudaGetErrorString(error));
  }
}

class CudaLaunch {
 public:
  // tensor: the op's first input (its device runs the kernel). `op` names the op in messages.
  CudaLaunch(const Tensor& tensor, const char* op, std::initializer_list<NamedSize> int32_sizes)
      : device_guard_(checked_device_index(tensor, op, int32_sizes)) {
    const int32_t device = tensor.get_device_index();
    check_cuda(cudaDeviceGetAttribute(&compute_capability_major_,
                                      cudaDevAttrComputeCapabilityMajor, device),
               "cudaDeviceGetAttribute");
    // The stable ABI's accelerator::getCurrentStream gives a stream id, not the cudaStream_t a
    // launch needs before torch 2.13; AOTInductor's C shim (part of the same stable C surface)
    // hands out the handle itself.
    void* stream = nullptr;
    TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device, &stream));
    stream_ = static_cast<cudaStream_t>(stream);
  }

  int compute_capability_major() const { return compute_capability_major_; }
  cudaStream_t stream() const { return stream_; }

 private:
  static int32_t checked_device_index(const Tensor& tensor, const char* op,
                                      std::initializer_list<NamedSize> int32_sizes) {
    EAV_CHECK(tensor.is_cuda(), "eav: the CUDA kernel of ", op, " got a ",
              device_string(tensor.device()), " tensor");
    for (const NamedSize& size : int32_sizes) {
      if (size.second > INT32_MAX) {
        std::ostringstream all;
        for (const NamedSize& each : int32_sizes) all << ' ' << each.first << '=' << each.second;
        throw_invalid_argument("eav: ", op, ": ", size.first, " (", size.second,
                               ") exceeds the CUDA kernels' 32-bit limit (", INT32_MAX,
                               "); sizes:", all.str());
      }
    }
    return tensor.get_device_index();
  }

  torch::stable::accelerator::DeviceGuard device_guard_;
  int compute_capability_major_ = 0;
  cudaStream_t stream_ = nullptr;
};

}  // namespace eav::cuda
