"""Triton kernels of eav-kernels, installed as ``eav_kernels.triton_kernels``.

* ``cross_frame_intensity``: CFI from q, k read in place (docs/design.md, contract 1);
  ``per_batch_cross_frame_intensity`` is the ``backend="triton"`` entry of ``eav_kernels.backends``.
* ``temporal_attention``: flash forward over the frames of ``[B*S, H, F, D]`` sequences plus each
  sequence's CFI in the same pass (contract 2); ``enhanced_sdpa`` uses it for pure temporal
  attention.

Importing this package imports nothing from Triton; the submodules do. Triton picks interpreter or
compiler when they are imported (``TRITON_INTERPRET=1``: CPU tensors, for tests).
"""
