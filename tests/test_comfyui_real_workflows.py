"""The API-format workflows of docs/comfyui.md, checked against a real ComfyUI's node registry.

ComfyUI's own loaders fill its registry (``nodes.NODE_CLASS_MAPPINGS``): the built-in extra nodes
(``nodes.init_builtin_extra_nodes``; modules that fail to import for a missing optional package
are left out and named in the failure message), then this repository as ComfyUI loads a folder in
``custom_nodes`` (``nodes.load_custom_node`` on the repository root, whose ``__init__.py`` exposes
``comfy_entrypoint``). No API nodes, no server, no model is loaded; CPU only. Each workflow must
name registered nodes only, use only the inputs each node declares, link existing outputs, and
pass ComfyUI's own prompt validation (``execution.validate_prompt``) once empty stand-in files
carry the model file names it names. Skipped like ``test_comfyui_real.py`` without a ComfyUI.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from comfyui_native_models import skip_without_comfyui

skip_without_comfyui()

import execution  # noqa: E402  (ComfyUI's, from the checkout)
import folder_paths  # noqa: E402
import nodes  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
DOC = (REPOSITORY / "docs" / "comfyui.md").read_text()
WORKFLOWS = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", DOC, flags=re.S)]
# The loaders' inputs that name model files, and ComfyUI's folder each lists them from.
MODEL_FILE_FOLDERS = {"unet_name": "diffusion_models", "clip_name": "text_encoders", "clip_name1": "text_encoders",
                      "clip_name2": "text_encoders", "vae_name": "vae"}


async def _load_nodes() -> list[str]:
    """ComfyUI's built-in extra nodes, then this repository as a custom-node folder; returns the
    extra-node modules that did not import."""
    await nodes.init_public_apis()
    failed = await nodes.init_builtin_extra_nodes()
    built_in = set(nodes.NODE_CLASS_MAPPINGS)
    loaded = await nodes.load_custom_node(str(REPOSITORY), ignore=built_in, module_parent="custom_nodes")
    assert loaded, f"ComfyUI did not load {REPOSITORY} as a custom-node folder (its log says why)"
    return failed


@pytest.fixture(scope="module")
def not_imported() -> list[str]:
    """The registry filled once for the module; the extra-node modules that failed to import."""
    return asyncio.run(_load_nodes())


def _declared_inputs(node_class: Any) -> dict[str, Any]:
    """Input name -> its declaration, required and optional, as ComfyUI's validation reads them."""
    declared = node_class.INPUT_TYPES()
    return {**declared.get("required", {}), **declared.get("optional", {})}


def _workflow_id(workflow: dict) -> str:
    return next(node["inputs"]["filename_prefix"] for node in workflow.values() if "filename_prefix" in node["inputs"])


def test_the_doc_has_the_two_workflows():
    assert [_workflow_id(workflow) for workflow in WORKFLOWS] == ["eav_wan22", "eav_hunyuan"]


def test_the_pack_registers_the_node_as_comfyui_loads_custom_nodes(not_imported: list[str]):
    node_class = nodes.NODE_CLASS_MAPPINGS.get("EnhanceAVideo")
    assert node_class is not None, "EnhanceAVideo is not registered after loading the repository as a custom node"
    assert node_class.RELATIVE_PYTHON_MODULE == f"custom_nodes.{REPOSITORY.name}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=map(_workflow_id, WORKFLOWS))
def test_every_node_input_and_link_of_the_workflow_exists(workflow: dict, not_imported: list[str]):
    for node_id, node in workflow.items():
        node_class = nodes.NODE_CLASS_MAPPINGS.get(node["class_type"])
        assert node_class is not None, (f"node {node_id}: {node['class_type']} is not registered (extra-node modules "
                                        f"that did not import here: {', '.join(not_imported) or 'none'})")
        declared = _declared_inputs(node_class)
        undeclared = sorted(set(node["inputs"]) - set(declared))
        assert not undeclared, f"node {node_id} ({node['class_type']}) declares no input {undeclared}: {sorted(declared)}"
        for name, value in node["inputs"].items():
            if isinstance(value, list):  # a link [node id, output index]
                source, index = value
                assert source in workflow, f"node {node_id}.{name} links to node {source}, which the workflow lacks"
                outputs = nodes.NODE_CLASS_MAPPINGS[workflow[source]["class_type"]].RETURN_TYPES
                assert 0 <= index < len(outputs), f"node {node_id}.{name} links output {index} of {len(outputs)}"


def _validate(workflow: dict) -> tuple[bool, Any, list[str], dict[str, Any]]:
    """ComfyUI's ``execution.validate_prompt``: (valid, error, output node ids, errors per node id)."""
    return asyncio.run(execution.validate_prompt("docs", workflow, None))


def _validate_with_model_files(workflow: dict, files: Path) -> tuple[bool, Any, list[str], dict[str, Any]]:
    """``_validate`` with an empty file under ``files`` for each model file the workflow names,
    added to ComfyUI's model folders for the call (nothing loads them)."""
    saved = {folder: list(folder_paths.folder_names_and_paths[folder][0]) for folder in set(MODEL_FILE_FOLDERS.values())}
    try:
        for node in workflow.values():
            for name in set(node["inputs"]) & set(MODEL_FILE_FOLDERS):
                folder = files / MODEL_FILE_FOLDERS[name]
                folder.mkdir(exist_ok=True)
                (folder / node["inputs"][name]).touch()
                folder_paths.add_model_folder_path(MODEL_FILE_FOLDERS[name], str(folder))
        return _validate(workflow)
    finally:
        for folder, paths in saved.items():
            folder_paths.folder_names_and_paths[folder][0][:] = paths


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=map(_workflow_id, WORKFLOWS))
def test_comfyui_validates_the_workflow_but_for_the_model_files(workflow: dict, not_imported: list[str]):
    """Without the model files, ComfyUI's validation reports them missing, and nothing else."""
    valid, error, outputs, node_errors = _validate(workflow)
    reasons = [(node_id, reason["type"], reason["extra_info"].get("input_name"))
               for node_id, errors in node_errors.items() for reason in errors["errors"]]
    named = {(node_id, "value_not_in_list", name) for node_id, node in workflow.items()
             for name in set(node["inputs"]) & set(MODEL_FILE_FOLDERS)}
    assert not valid and set(reasons) == named and len(reasons) == len(named), (error, reasons)


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=map(_workflow_id, WORKFLOWS))
def test_comfyui_validates_the_workflow_with_its_model_files(workflow: dict, not_imported: list[str], tmp_path: Path):
    """Every value, type and link passes; the saver (the last node) is the one output."""
    valid, error, outputs, node_errors = _validate_with_model_files(workflow, tmp_path)
    assert valid and not node_errors, (error, node_errors)
    assert outputs == [max(workflow, key=int)], outputs


def test_comfyui_validation_rejects_a_placement_the_node_does_not_offer(not_imported: list[str], tmp_path: Path):
    """The check above could fail: an unknown value of the node's placement is reported on it."""
    workflow = json.loads(json.dumps(WORKFLOWS[1]))
    node_id = next(key for key, node in workflow.items() if node["class_type"] == "EnhanceAVideo")
    workflow[node_id]["inputs"]["placement"] = "after the whole block"
    valid, error, outputs, node_errors = _validate_with_model_files(workflow, tmp_path)
    assert not valid and list(node_errors) == [node_id], node_errors
    assert [reason["extra_info"]["input_name"] for reason in node_errors[node_id]["errors"]] == ["placement"]
