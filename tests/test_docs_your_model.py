"""docs/your_model.md's ten-line example runs as written and enhances the model."""

from __future__ import annotations

import re
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "your_model.md"


def test_ten_line_example_runs_and_enhances():
    section = DOC.read_text().split("## Ten lines", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    with torch.no_grad():
        plain = namespace["model"](namespace["latents"])  # after remove_enhancement
    assert (namespace["enhanced"] - plain).abs().max() > 1e-3
