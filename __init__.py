"""ComfyUI custom-node entry of this repository: clone or link the repository into
``ComfyUI/custom_nodes`` and ComfyUI imports this folder as a package and awaits
``comfy_entrypoint`` (its V3 node API). The node's code is the installed ``eav_kernels`` package
(``eav_kernels/comfyui/``); install it into ComfyUI's Python first (docs/comfyui.md).
Nothing else imports this file: the Python package is ``eav_kernels``."""

try:
    from eav_kernels.comfyui import comfy_entrypoint
except ImportError as error:
    raise ImportError(
        "the Enhance-A-Video node needs the eav-kernels package in ComfyUI's Python: from this folder "
        "run `<ComfyUI's python> -m pip install --no-build-isolation -e .` (docs/comfyui.md)"
    ) from error

__all__ = ["comfy_entrypoint"]
