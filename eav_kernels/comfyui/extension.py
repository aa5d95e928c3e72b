"""ComfyUI's V3 entry point. Importable without ComfyUI; the node module is imported when ComfyUI
calls the entry point."""

from __future__ import annotations

from typing import Any


async def comfy_entrypoint() -> Any:
    """The node pack's ``ComfyExtension`` (ComfyUI awaits this when it loads custom nodes)."""
    from .node import EnhanceAVideoExtension

    return EnhanceAVideoExtension()
