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
