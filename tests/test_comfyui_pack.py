"""The node pack as ComfyUI loads it: the repository root found the way ComfyUI's
``load_custom_node`` finds a custom node, its V3 entry point, the node's schema and execution
(against a stand-in of ``comfy_api.latest``), and a package that imports without ComfyUI."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from comfyui_api_standin import ComfyExtension, stand_in_comfy_api
from comfyui_standin_models import WanModel
from comfyui_standins import BaseModel, ModelPatcher
from eav_kernels.comfyui import AFTER_PROJECTION, EnhanceSettings, enhance_model
from output_checks import assert_changed

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def comfy_api(monkeypatch):
    yield from stand_in_comfy_api(monkeypatch)


def load_like_comfyui(module_path: str, monkeypatch):
    """What ComfyUI's ``load_custom_node`` does with a custom-node folder."""
    sys_module_name = module_path.replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(sys_module_name, os.path.join(module_path, "__init__.py"))
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, sys_module_name, module)
    spec.loader.exec_module(module)
    return module


def test_the_repository_root_is_a_v3_custom_node(comfy_api, monkeypatch):
    module = load_like_comfyui(str(ROOT), monkeypatch)
    assert inspect.iscoroutinefunction(module.comfy_entrypoint)
    extension = asyncio.run(module.comfy_entrypoint())
    assert isinstance(extension, ComfyExtension)
    nodes = asyncio.run(extension.get_node_list())
    assert [node.define_schema().kwargs["node_id"] for node in nodes] == ["EnhanceAVideo"]


def test_the_node_schema_and_execute(comfy_api, generator):
    from eav_kernels.comfyui.node import EnhanceAVideo

    schema = EnhanceAVideo.define_schema().kwargs
    inputs = {item.id: item for item in schema["inputs"]}
    assert list(inputs) == ["model", "weight", "start_percent", "end_percent", "blocks", "per_sample", "placement"]
    assert inputs["placement"].kwargs["default"] == AFTER_PROJECTION
    assert inputs["blocks"].kwargs["default"] == "all"
    torch.manual_seed(0)
    model = ModelPatcher(BaseModel(WanModel()))
    output = EnhanceAVideo.execute(model, weight=3.0, start_percent=0.0, end_percent=1.0, blocks="1",
                                   per_sample=False, placement=AFTER_PROJECTION)
    clone = output.args[0]
    assert clone is not model and clone.model is model.model
    x, context = torch.randn(1, 4, 3, 6, 10, generator=generator), torch.randn(1, 5, 24, generator=generator)
    direct = enhance_model(model, EnhanceSettings(weight=3.0, blocks=frozenset({1})))
    assert torch.equal(clone.sample_call(x, 0.5, context), direct.sample_call(x, 0.5, context))
    assert_changed(clone.sample_call(x, 0.5, context), model.sample_call(x, 0.5, context))
    with pytest.raises(ValueError, match="blocks"):
        EnhanceAVideo.execute(model, 3.0, 0.0, 1.0, "first", False, AFTER_PROJECTION)


def test_the_package_imports_without_comfyui():
    script = ("import sys, eav_kernels.comfyui; "
              "loaded = [m for m in sys.modules if m.split('.')[0] in ('comfy', 'comfy_api')]; "
              "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)


def test_pyproject_declares_the_pack():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["comfy"]["PublisherId"] and pyproject["tool"]["comfy"]["DisplayName"]
    assert "eav_kernels.comfyui" in pyproject["tool"]["setuptools"]["packages"]
