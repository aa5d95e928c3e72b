// The Python module eav_kernels._C: importing it loads this library, whose static initialisers
// register the ops (torch.ops.eav.*); its functions report how it was built. Written against
// Python's limited API (Py_LIMITED_API, set by the build), so one binary serves every CPython from
// the version the build names on (the wheel's abi3 tag), and against torch's stable ABI only.

#include <Python.h>

#include <atomic>
#include <cstdint>

#include "cpu/cpu_capability.h"
#include "torch_stable.h"

#ifndef EAV_CUDA_ARCHS
#define EAV_CUDA_ARCHS ""
#endif

namespace {

// How many threads a parallel region of this extension (torch's pool, as the CPU ops use it)
// really runs on at the current torch.set_num_threads setting.
int64_t parallel_region_threads() {
  std::atomic<int64_t> threads{0};
  eav::torch_parallel_for(0, 1 << 12, 1, [&](int64_t, int64_t) {
    uint32_t index = 0;
    TORCH_ERROR_CODE_CHECK(torch_get_thread_idx(&index));
    const int64_t mine = static_cast<int64_t>(index) + 1;
    int64_t seen = threads.load();
    while (mine > seen && !threads.compare_exchange_weak(seen, mine)) {
    }
  });
  return threads.load();
}

PyObject* py_parallel_region_threads(PyObject*, PyObject*) {
  try {
    return PyLong_FromLongLong(parallel_region_threads());
  } catch (const std::exception& error) {
    PyErr_SetString(PyExc_RuntimeError, error.what());
    return nullptr;
  }
}

PyObject* py_cpu_kernel_capability(PyObject*, PyObject*) {
  return PyUnicode_FromString(eav::cpu::selected_kernel_capability().c_str());
}

PyObject* py_cuda_archs(PyObject*, PyObject*) { return PyUnicode_FromString(EAV_CUDA_ARCHS); }

PyMethodDef methods[] = {
    {"parallel_region_threads", py_parallel_region_threads, METH_NOARGS,
     "Threads used by a parallel region of this extension at the current setting."},
    {"cpu_kernel_capability", py_cpu_kernel_capability, METH_NOARGS,
     "Build of the CPU kernel in use here: 'AVX512_BF16', 'AVX2' or 'DEFAULT'."},
    {"cuda_archs", py_cuda_archs, METH_NOARGS,
     "CUDA architectures the extension was compiled for ('' when CUDA was not built)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT,
    "_C",
    "eav-kernels compiled ops (registered as torch.ops.eav.*) and build information",
    -1,
    methods,
};

}  // namespace

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module_definition); }
