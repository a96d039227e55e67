"""Fixtures of the benchmark tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def restore_threads():
    """A benchmark sets torch's threads; give the other tests theirs back."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
