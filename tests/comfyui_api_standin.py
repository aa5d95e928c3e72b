"""A stand-in of ``comfy_api.latest`` (ComfyUI's V3 node API) with just what the node uses:
``io.ComfyNode``, ``io.Schema``, ``io.NodeOutput``, the ``Input``/``Output`` of ``Model``,
``Float``, ``String``, ``Boolean``, ``Combo``, and ``ComfyExtension``. It records what it is given."""

from __future__ import annotations

import types


class _Recorded:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    @property
    def id(self) -> str:
        return self.args[0]


def _comfy_type(name: str) -> type:
    return type(name, (), {"Input": type(f"{name}.Input", (_Recorded,), {}),
                           "Output": type(f"{name}.Output", (_Recorded,), {})})


class ComfyExtension:
    async def on_load(self) -> None:
        pass


def comfy_api_modules() -> dict[str, types.ModuleType]:
    """``{"comfy_api": ..., "comfy_api.latest": ...}`` to put into ``sys.modules``."""
    io = types.SimpleNamespace(
        ComfyNode=type("ComfyNode", (), {}), Schema=type("Schema", (_Recorded,), {}),
        NodeOutput=type("NodeOutput", (_Recorded,), {}),
        **{name: _comfy_type(name) for name in ("Model", "Float", "String", "Boolean", "Combo")},
    )
    latest = types.ModuleType("comfy_api.latest")
    latest.io, latest.ComfyExtension = io, ComfyExtension
    package = types.ModuleType("comfy_api")
    package.latest = latest
    return {"comfy_api": package, "comfy_api.latest": latest}


NODE_MODULE = "eav_kernels.comfyui.node"


def stand_in_comfy_api(monkeypatch):
    """Generator for a fixture: ``comfy_api.latest`` stood in, the node module imported afresh
    against it, and dropped again afterwards. Yields the stand-in ``comfy_api.latest``."""
    import sys

    for name, module in comfy_api_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delitem(sys.modules, NODE_MODULE, raising=False)
    yield sys.modules["comfy_api.latest"]
    sys.modules.pop(NODE_MODULE, None)
