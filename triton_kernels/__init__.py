"""Triton kernels of eav-kernels, installed as ``eav_kernels.triton_kernels`` (issue #3)."""
