# CUDA kernels of eav_kernels._C. Included by CMakeLists.txt after the _C target exists.
#
# Built when EAV_BUILD_CUDA is ON: setup.py decides (tools/build_manifest.py, cuda_toolkit: not
# EAV_SKIP_CUDA_BUILD, a CUDA build of torch, whose libtorch_cuda gives the launchers torch's
# current stream, and an nvcc) and passes that nvcc. Architectures, first that is set wins:
#   EAV_CUDA_ARCHS        "80;86;89;90a" (CMake style; "+PTX" on an entry also embeds its PTX)
#   TORCH_CUDA_ARCH_LIST  "8.0;8.6;9.0a" or "8.0 9.0a+PTX" (PyTorch style)
#   the visible GPUs      (nvidia-smi --query-gpu=compute_cap)
# The CUDA runtime is linked statically: the library needs no libcudart.so of a given major
# version at run time, only a driver for the toolkit's CUDA version (torch's stream handles are
# the driver's, shared by every runtime in the process).

set(EAV_BUILD_CUDA OFF CACHE BOOL "build the CUDA kernels (setup.py decides, by the rule in tools/build_manifest.py)")
set(EAV_CUDA_ARCHS "$ENV{EAV_CUDA_ARCHS}" CACHE STRING "CUDA architectures, e.g. 80;86;89;90a")
set(TORCH_CUDA_ARCH_LIST "$ENV{TORCH_CUDA_ARCH_LIST}" CACHE STRING "PyTorch-style arch list")

if(NOT EAV_BUILD_CUDA)
  message(STATUS "eav: CUDA kernels not built (EAV_BUILD_CUDA=OFF)")
  return()
endif()
enable_language(CUDA)  # CMAKE_CUDA_COMPILER: the nvcc setup.py found
find_package(CUDAToolkit REQUIRED)
find_library(EAV_TORCH_CUDA_LIBRARY torch_cuda PATHS "${EAV_TORCH_DIR}/lib" NO_DEFAULT_PATH REQUIRED)

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

set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)

set_source_files_properties(${EAV_SOURCES_cuda_kernel} PROPERTIES
  COMPILE_OPTIONS "${eav_gencode};-O3;-lineinfo")
set_source_files_properties(${EAV_SOURCES_cuda_host} PROPERTIES COMPILE_DEFINITIONS USE_CUDA)
target_sources(_C PRIVATE ${EAV_SOURCES_cuda_kernel} ${EAV_SOURCES_cuda_host})
target_include_directories(_C PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
set_target_properties(_C PROPERTIES CUDA_ARCHITECTURES OFF CUDA_RUNTIME_LIBRARY Static)
# cuda_archs() reports the list space-separated ("80 90a"): a ';' inside a definition does not
# survive the build tool's shell.
string(REPLACE ";" " " eav_arch_define "${eav_arch_names}")
target_compile_definitions(_C PRIVATE "EAV_CUDA_ARCHS=\"${eav_arch_define}\"")
target_link_libraries(_C PRIVATE "${EAV_TORCH_CUDA_LIBRARY}" CUDA::cudart_static)
message(STATUS "eav: CUDA kernels for ${eav_arch_names} (from ${eav_arch_source}), nvcc ${CMAKE_CUDA_COMPILER_VERSION}")
