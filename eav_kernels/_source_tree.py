"""``eav_kernels.triton_kernels`` from a plain copy of the repository.

The Triton kernels live in the repository's top-level ``triton_kernels/`` folder and are always
imported as ``eav_kernels.triton_kernels`` (never as a top-level ``triton_kernels``, a name that
Triton's own kernel library uses). A wheel installs the folder there; an editable install maps
it there (``[tool.setuptools.package-dir]`` in pyproject.toml). A checkout used without
installing (``PYTHONPATH=/path/to/repo``, as after ``tools/build_with_torch.py``) has neither:
there the folder next to the package is loaded under the subpackage's name, once, when the
package is imported. Its ``__init__`` imports nothing from Triton.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

__all__ = ["attach_triton_kernels"]


def attach_triton_kernels(package: types.ModuleType) -> None:
    """Make ``<package>.triton_kernels`` importable when no installed layout provides it."""
    name = f"{package.__name__}.triton_kernels"
    if name in sys.modules or importlib.util.find_spec(name) is not None:
        return
    folder = Path(package.__file__).resolve().parent.parent / "triton_kernels"
    if not (folder / "__init__.py").is_file():
        return  # an install without the Triton kernels: importing them says so
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    package.triton_kernels = module
