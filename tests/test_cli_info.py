"""``eav info``: the console script runs and reports the same as ``python -m eav_kernels.info``."""

import json
import subprocess
import sys
from pathlib import Path

from eav_kernels.cli import main
from eav_kernels.info import collect_info, format_info


def test_console_script_info_json():
    script = Path(sys.executable).parent / "eav"
    assert script.exists(), "the `eav` console script is not installed (pip install -e .)"
    done = subprocess.run([str(script), "info", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["torch"] and "cpu" in info["devices"]
    assert set(info["devices"]["cpu"]["backends"]) >= {"cpu", "reference", "triton", "cuda"}


def test_info_prints_the_info_module_report(capsys):
    assert main(["info"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == format_info(collect_info())
    assert "reference  usable" in printed
