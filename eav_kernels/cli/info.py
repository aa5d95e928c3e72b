"""``eav info``: what this installation can do here (the same report as ``python -m eav_kernels.info``)."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="backends, CUDA arches, versions, devices",
        description="Backends built and usable here, compiled CUDA arches, versions of "
                    "torch/triton/diffusers/CUDA, the devices. Always exits 0.",
    )
    parser.add_argument("--json", action="store_true", help="print collect_info() as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..info import collect_info, format_info

    info = collect_info()
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return 0
