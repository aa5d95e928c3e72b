"""docs/comfyui.md stays true: its workflows wire the node with the inputs the node declares, the
README links it, and its token-grouping claim holds (tools/comfyui_token_grouping.py)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

import eav_kernels as eav
from comfyui_api_standin import stand_in_comfy_api
from eav_kernels.comfyui import parse_blocks
from eav_kernels.comfyui.settings import PLACEMENTS

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "comfyui.md").read_text()
NODE_INPUTS = {"model", "weight", "start_percent", "end_percent", "blocks", "per_sample", "placement"}


def workflows() -> list[dict]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC, flags=re.S)]


def test_the_workflows_wire_the_node_as_it_is_declared(comfy_api_node):
    schema_inputs = [item.id for item in comfy_api_node.define_schema().kwargs["inputs"]]
    assert set(schema_inputs) == NODE_INPUTS
    assert len(workflows()) == 2
    for workflow in workflows():
        nodes = [node for node in workflow.values() if node["class_type"] == "EnhanceAVideo"]
        assert nodes
        for node in nodes:
            assert set(node["inputs"]) == NODE_INPUTS
            assert node["inputs"]["placement"] in PLACEMENTS
            parse_blocks(node["inputs"]["blocks"])
        for node in workflow.values():
            for value in node["inputs"].values():
                if isinstance(value, list):
                    assert value[0] in workflow and value[1] == 0, f"dangling link {value}"


def test_the_readme_links_the_doc():
    assert "(docs/comfyui.md)" in (ROOT / "README.md").read_text()


def test_spatial_major_grouping_is_not_the_cross_frame_intensity():
    spec = importlib.util.spec_from_file_location("comfyui_token_grouping", ROOT / "tools" / "comfyui_token_grouping.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for shared in (False, True):
        q, k = tool.static_video_qk(5, 240, shared)
        torch.testing.assert_close(eav.cross_frame_intensity(q, k, 5), torch.tensor(0.2), rtol=1e-5, atol=1e-6)
    grouped = eav.cross_frame_intensity(tool.spatial_major(q, 5), tool.spatial_major(k, 5), 5)
    assert grouped < 0.2 / 10, f"grouped reading {grouped.item()} is not far from 1/F on self-similar tokens"


@pytest.fixture
def comfy_api_node(monkeypatch):
    for _ in stand_in_comfy_api(monkeypatch):
        from eav_kernels.comfyui.node import EnhanceAVideo

        yield EnhanceAVideo
