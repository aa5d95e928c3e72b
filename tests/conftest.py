import pytest
import torch


@pytest.fixture
def generator() -> torch.Generator:
    """A fresh, seeded generator per test: inputs are random, never zeros, and reproducible."""
    return torch.Generator().manual_seed(20250207)


@pytest.fixture
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# Hypothesis profiles (tests/test_fuzz.py): "ci" is the default and part of `make test`;
# "thorough" is the long run: HYPOTHESIS_PROFILE=thorough .venv/bin/python -m pytest tests/test_fuzz.py
try:
    import os

    from hypothesis import HealthCheck, settings

    _FUZZ_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("ci", max_examples=50, deadline=None, suppress_health_check=_FUZZ_HEALTH)
    settings.register_profile("thorough", max_examples=1000, deadline=None, suppress_health_check=_FUZZ_HEALTH)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is a test extra; test_fuzz.py skips without it
    pass
