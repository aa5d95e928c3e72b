#!/usr/bin/env python
"""Kept for old command lines: the benchmark is ``eav bench`` (``eav_kernels/cli/bench.py``).

    .venv/bin/python benchmarks/bench_cfi.py --preset hunyuan-video --repeats 5 --csv out.csv
"""

import sys

from eav_kernels.cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
