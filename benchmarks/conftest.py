"""pytest-benchmark microbenchmarks: ``.venv/bin/python -m pytest benchmarks/ --benchmark-only``.

Not part of ``make test`` (pytest's testpaths is ``tests``). Shapes are the presets of eav_kernels/presets.py
shrunk to a few spatial tokens per frame (``EAV_BENCH_SHRINK``, default 50) so a run takes seconds
on a laptop CPU; set ``EAV_BENCH_SHRINK=1`` for the real shapes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
