"""Helpers of the hostile-input tests: a time limit and an allocation limit around a call, and a FIFO."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import tracemalloc
from typing import Iterator

import pytest

# What a reader may allocate on the tiny files of these tests: the files are at most a few kB, so a reader that
# sizes its arrays from the file (not from the header alone) stays far below this.
ALLOCATION_LIMIT_BYTES = 64 * 2 ** 20
# Seconds a reader may take on such a file before it counts as hung (readers take milliseconds).
TIME_LIMIT_S = 10.0


class Hang(BaseException):
    """Raised in the test when a call runs past its time limit (a BaseException, so no reader can swallow it)."""


@contextlib.contextmanager
def bounded(seconds: float = TIME_LIMIT_S, max_bytes: int = ALLOCATION_LIMIT_BYTES) -> Iterator[None]:
    """Fail the test if the block runs longer than ``seconds`` (SIGALRM: a blocking open or read is interrupted)
    or its peak of traced allocations (NumPy's included) exceeds ``max_bytes``."""
    if not hasattr(signal, "setitimer"):
        pytest.skip("needs POSIX signals (signal.setitimer)")

    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        peak = tracemalloc.get_traced_memory()[1] - base
        if not started:
            tracemalloc.stop()
    assert peak <= max_bytes, f"allocated {peak} bytes, more than the {max_bytes} allowed"


def make_fifo(path: pathlib.Path) -> pathlib.Path:
    """A FIFO at ``path`` (skips where the platform has none). Opening it for reading blocks until a writer comes."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs os.mkfifo")
    os.mkfifo(path)
    return path
