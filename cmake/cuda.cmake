# CUDA kernels of eav_kernels._C. Included by CMakeLists.txt after the _C target exists.
#
# Built when all of these hold: EAV_SKIP_CUDA_BUILD is not set, torch is a CUDA build (a CPU torch
# has no libtorch_cuda to link against), and a CUDA toolkit is found. Architectures, first that is
# set wins:
#   EAV_CUDA_ARCHS        "80;86;89;90a" (CMake style; "+PTX" on an entry also embeds its PTX)
#   TORCH_CUDA_ARCH_LIST  "8.0;8.6;9.0a" or "8.0 9.0a+PTX" (PyTorch style)
#   the visible GPUs      (nvidia-smi --query-gpu=compute_cap)
# A CUDA torch's find_package(Torch) appends -gencode flags for its own arch list to
# CMAKE_CUDA_FLAGS; we strip them so that exactly the requested cubins are built (as vLLM does).

set(EAV_SKIP_CUDA_BUILD "$ENV{EAV_SKIP_CUDA_BUILD}" CACHE STRING "1: build the CPU kernels only")
set(EAV_CUDA_ARCHS "$ENV{EAV_CUDA_ARCHS}" CACHE STRING "CUDA architectures, e.g. 80;86;89;90a")
set(TORCH_CUDA_ARCH_LIST "$ENV{TORCH_CUDA_ARCH_LIST}" CACHE STRING "PyTorch-style arch list")

if(EAV_SKIP_CUDA_BUILD AND NOT EAV_SKIP_CUDA_BUILD STREQUAL "0")
  message(STATUS "eav: EAV_SKIP_CUDA_BUILD=${EAV_SKIP_CUDA_BUILD}: CUDA kernels not built")
  return()
endif()
if(NOT CAFFE2_USE_CUDA)
  message(STATUS "eav: torch ${Torch_VERSION} is not a CUDA build: CUDA kernels not built")
  return()
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  message(STATUS "eav: no CUDA toolkit (nvcc) found: CUDA kernels not built")
  return()
endif()
enable_language(CUDA)  # torch's cuda.cmake has usually done this already

# --- the architecture list, normalised to entries like 80, 90a, 90a+PTX ---------------------------
if(EAV_CUDA_ARCHS)
  set(eav_archs "${EAV_CUDA_ARCHS}")
  set(eav_arch_source "EAV_CUDA_ARCHS")
elseif(TORCH_CUDA_ARCH_LIST)
  string(REPLACE " " ";" eav_archs "${TORCH_CUDA_ARCH_LIST}")
  string(REPLACE "." "" eav_archs "${eav_archs}")
  set(eav_arch_source "TORCH_CUDA_ARCH_LIST")
else()
  find_program(EAV_NVIDIA_SMI nvidia-smi)
  set(eav_archs "")
  if(EAV_NVIDIA_SMI)
    execute_process(COMMAND ${EAV_NVIDIA_SMI} --query-gpu=compute_cap --format=csv,noheader
                    OUTPUT_VARIABLE eav_visible RESULT_VARIABLE eav_smi_result
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(eav_smi_result EQUAL 0 AND eav_visible)
      string(REPLACE "\n" ";" eav_visible "${eav_visible}")
      foreach(cap IN LISTS eav_visible)
        string(STRIP "${cap}" cap)
        string(REPLACE "." "" cap "${cap}")
        if(cap STREQUAL "90")
          set(cap "90a")  # Hopper: the arch-specific target, as flash-attention builds
        endif()
        list(APPEND eav_archs "${cap}")
      endforeach()
      list(REMOVE_DUPLICATES eav_archs)
    endif()
  endif()
  set(eav_arch_source "the visible GPUs")
  if(NOT eav_archs)
    message(FATAL_ERROR
      "eav: CUDA build requested but no architecture given and no GPU visible: set "
      "EAV_CUDA_ARCHS (e.g. \"80;90a\") or TORCH_CUDA_ARCH_LIST, or EAV_SKIP_CUDA_BUILD=1")
  endif()
endif()

set(eav_gencode "")
set(eav_arch_names "")
foreach(arch IN LISTS eav_archs)
  string(STRIP "${arch}" arch)
  if(arch STREQUAL "")
    continue()
  endif()
  set(ptx OFF)
  if(arch MATCHES "\\+PTX$")
    set(ptx ON)
    string(REGEX REPLACE "\\+PTX$" "" arch "${arch}")
  endif()
  if(NOT arch MATCHES "^[0-9]+[af]?$")
    message(FATAL_ERROR "eav: CUDA architecture '${arch}' from ${eav_arch_source} is not like 80, 90a")
  endif()
  list(APPEND eav_gencode "-gencode=arch=compute_${arch},code=sm_${arch}")
  if(ptx)
    list(APPEND eav_gencode "-gencode=arch=compute_${arch},code=compute_${arch}")
  endif()
  list(APPEND eav_arch_names "${arch}")
endforeach()
if(NOT eav_arch_names)
  message(FATAL_ERROR "eav: no CUDA architecture in ${eav_arch_source}='${eav_archs}'")
endif()

# Drop the arch flags torch added, keep everything else it put into CMAKE_CUDA_FLAGS.
string(REGEX REPLACE "-gencode[ =]arch=[^ ]+" "" CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS}")
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

set(eav_cuda_kernels
  ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda/cross_frame_intensity.cu
  ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda/temporal_attention.cu)
set_source_files_properties(${eav_cuda_kernels} PROPERTIES
  COMPILE_OPTIONS "${eav_gencode};-O3;-lineinfo")
target_sources(_C PRIVATE ${eav_cuda_kernels}
  ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda/cross_frame_intensity_cuda.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda/temporal_attention_cuda.cpp)
set_target_properties(_C PROPERTIES CUDA_ARCHITECTURES OFF)
# cuda_archs() reports the list space-separated ("80 90a"): a ';' inside a definition does not
# survive the build tool's shell.
string(REPLACE ";" " " eav_arch_define "${eav_arch_names}")
target_compile_definitions(_C PRIVATE "EAV_CUDA_ARCHS=\"${eav_arch_define}\"")
target_link_libraries(_C PRIVATE CUDA::cudart)
message(STATUS "eav: CUDA kernels for ${eav_arch_names} (from ${eav_arch_source}), nvcc ${CMAKE_CUDA_COMPILER_VERSION}")
