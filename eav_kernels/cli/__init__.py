"""The ``eav`` command: ``eav info | bench | generate | plot-cfi`` (``eav COMMAND --help``).

Each subcommand lives in its own module with ``add_parser(subparsers)`` (registers its flags and
sets ``func``) and ``run(args) -> int``. Heavy imports (matplotlib, diffusers, imageio) happen
inside ``run`` so ``eav --help`` and ``eav info`` stay fast.
"""

from __future__ import annotations

import argparse
import sys

from . import bench, generate, info, plot_cfi

__all__ = ["build_parser", "main"]

COMMANDS = (info, bench, generate, plot_cfi)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eav", description="Enhance-A-Video kernels: inspect, benchmark, generate, plot.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
