"""Every ```python block of README.md and docs/*.md stays true to the code.

For every block: it compiles; its imports from ``eav_kernels`` (and from torch / diffusers where
installed) succeed; every ``eav.<name>`` it uses exists; and every keyword it passes to an
``eav_kernels`` callable (``eav.enhanced_sdpa(..., per_sample=...)``, ``EnhanceAVideoConfig(...)``)
is a parameter of it. Blocks that can run on CPU run as written, with the names they leave free
bound to stand-ins (the seed-model twins of tests/twin_*.py); ``NOT_RUN`` says why each other
block cannot run here. A new block must be added to one of the two tables: the test fails on a
block in neither, and on a table entry that matches no block.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import eav_kernels
from output_checks import assert_changed
from seed_model_reference import CASES, run

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the repository root
    line: int  # line of the opening fence
    code: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def python_blocks() -> list[Block]:
    blocks = []
    for path in DOCS:
        text = path.read_text()
        for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(Block(str(path.relative_to(ROOT)), line, match.group(1)))
    return blocks


# (doc, a line that appears in exactly one of its python blocks) -> why the block does not run here.
NOT_RUN: dict[tuple[str, str], str] = {
    ("README.md", "out = eav.enhanced_sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,"):
        "an API summary: `...` stands for the arguments listed above it, q_video/hidden are placeholders",
    ("README.md", "apply_enhance_a_video(pipe.transformer, EnhanceAVideoConfig(enhance_weight=3.4))   # CogVideoX"):
        "needs a downloaded CogVideoX pipeline `pipe` (tiny pipelines: tests/test_adapters_pipelines.py)",
    ("docs/diffusers.md", 'pipe = CogVideoXPipeline.from_pretrained("THUDM/CogVideoX-5b", torch_dtype=torch.bfloat16).to("cuda")'):
        "downloads CogVideoX-5b and needs a GPU",
    ("docs/diffusers.md", 'apply_enhance_a_video(pipe, {"transformer": EnhanceAVideoConfig(enhance_weight=4.0),'):
        "needs a Wan 2.2 A14B pipeline `pipe` (two experts: tests/test_adapters_pipelines.py)",
    ("docs/cli.md", "recorder = CFIRecorder()"):
        "needs a pipeline `pipe` and a 49-frame run (the recorder: tests/test_cli_plot_cfi.py)",
    ("docs/multi_gpu.md", 'dist.init_process_group("nccl")'):
        "torchrun on 2 GPUs with NCCL and a downloaded Wan model (gloo on CPU: tests/test_context_parallel.py)",
    ("docs/your_model.md", "model, latents = VideoDiT().eval(), torch.randn(2, 8, 16, 64)"):
        "runs and is checked in tests/test_docs_your_model.py",
    ("docs/your_model.md", "OPEN_SORA_V1_2 = AdapterSpec("):
        "an excerpt of eav_kernels/engine/seed_models.py (`_sequence_is_the_frames` is private there); "
        "test_open_sora_spec_excerpt_is_the_preset compares it",
}


@dataclass(frozen=True)
class Runnable:
    case: str  # the seed-model twin (tests/seed_model_reference.py) the block's model name is bound to
    name: str  # the name the block leaves free for it
    leaves_enhanced: bool  # the block ends with the model enhanced (else it removes the enhancement)


# (doc, a line of the block) -> how it runs here.
RUNNABLE: dict[tuple[str, str], Runnable] = {
    ("README.md", "eav.remove_enhancement(model)"): Runnable("open_sora_v1_2", "model", leaves_enhanced=False),
    ("docs/your_model.md", "eav.enhance_module(model, OPEN_SORA_V1_2, eav.EnhanceAVideoConfig(enhance_weight=4.0))"):
        Runnable("open_sora_v1_2", "model", leaves_enhanced=True),
    ("docs/your_model.md", "eav.enhance_module(transformer, OPEN_SORA_PLAN_V1_2, eav.EnhanceAVideoConfig(enhance_weight=4.0))"):
        Runnable("open_sora_plan_v1_2", "transformer", leaves_enhanced=True),
}


def _has_line(block: Block, line: str) -> bool:
    return any(own.strip() == line.strip() for own in block.code.splitlines())


def _owner(block: Block, table: dict) -> Any:
    keys = [key for key in table if key[0] == block.doc and _has_line(block, key[1])]
    assert len(keys) <= 1, f"{block}: matched by several entries {keys}"
    return table[keys[0]] if keys else None


BLOCKS = python_blocks()


def test_every_block_is_classified_and_every_entry_matches_one_block():
    for block in BLOCKS:
        owners = [table for table in (NOT_RUN, RUNNABLE) if _owner(block, table) is not None]
        assert len(owners) == 1, (
            f"{block}: add it to RUNNABLE (it runs on CPU) or NOT_RUN (with why) in this file")
    for key in [*NOT_RUN, *RUNNABLE]:
        matches = [b for b in BLOCKS if b.doc == key[0] and _has_line(b, key[1])]
        assert len(matches) == 1, f"table entry {key} matches {len(matches)} blocks, not one"


def _eav_aliases(tree: ast.AST) -> set[str]:
    aliases = {"eav"}  # the docs' convention, also in blocks that continue the one above
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {alias.asname for alias in node.names if alias.name == "eav_kernels" and alias.asname}
    return aliases


def _import_statements(tree: ast.AST) -> list[ast.stmt]:
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _resolvable(module: str) -> bool:
    root = module.split(".")[0]
    if root in ("eav_kernels", "torch"):
        return True
    return root == "diffusers" and importlib.util.find_spec("diffusers") is not None


def _callable_named(node: ast.expr, namespace: dict, aliases: set[str]) -> Callable | None:
    """The eav_kernels callable a call's function expression names, or None for anything else."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
        return getattr(eav_kernels, node.attr)
    if isinstance(node, ast.Name) and node.id in namespace:
        value = namespace[node.id]
        if getattr(value, "__module__", "").startswith("eav_kernels"):
            return value
    return None


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_block_names_what_the_code_has(block):
    tree = ast.parse(block.code, filename=str(block))
    namespace: dict = {}
    for statement in _import_statements(tree):
        module = statement.module if isinstance(statement, ast.ImportFrom) else statement.names[0].name
        if _resolvable(module):
            exec(compile(ast.Module([statement], type_ignores=[]), str(block), "exec"), namespace)
    aliases = _eav_aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            assert hasattr(eav_kernels, node.attr), f"{block}: eav_kernels has no {node.attr!r}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = _callable_named(node.func, namespace, aliases)
        if function is None:
            continue
        parameters = inspect.signature(function).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            continue
        for keyword in node.keywords:
            if keyword.arg is not None:
                assert keyword.arg in parameters, (
                    f"{block}: {function.__qualname__} has no parameter {keyword.arg!r}")


@pytest.mark.parametrize("block", [b for b in BLOCKS if _owner(b, RUNNABLE)], ids=str)
def test_runnable_block_runs_as_written(block):
    how: Runnable = _owner(block, RUNNABLE)
    case = CASES[how.case]
    model = case.build()
    inputs = case.inputs(2, 5, torch.Generator().manual_seed(0))
    plain = run(model, inputs)
    namespace = {how.name: model, "eav": eav_kernels}  # eav: imported by the block above it in the doc
    exec(compile(block.code, str(block), "exec"), namespace)
    after = run(model, inputs)
    if how.leaves_enhanced:
        assert_changed(after, plain)
        eav_kernels.remove_enhancement(model)
        after = run(model, inputs)
    assert torch.equal(after, plain), f"{block}: the model is not back to its own output after removal"


def test_open_sora_spec_excerpt_is_the_preset():
    """docs/your_model.md quotes OPEN_SORA_V1_2's definition: every field it shows has that value."""
    from eav_kernels.engine import OPEN_SORA_V1_2, seed_models

    block = next(b for b in BLOCKS if _owner(b, NOT_RUN) and "OPEN_SORA_V1_2 = AdapterSpec(" in b.code)
    call = ast.parse(block.code).body[0].value
    for keyword in call.keywords:
        shown = keyword.value
        actual = getattr(OPEN_SORA_V1_2, keyword.arg)
        if isinstance(shown, ast.Name):
            assert actual is getattr(seed_models, shown.id), f"{keyword.arg}: not {shown.id}"
        else:
            assert actual == ast.literal_eval(shown), f"{keyword.arg}: {actual!r} in the code"
