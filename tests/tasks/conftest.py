"""Fixtures of the task, command-line and viewer tests."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import stat
import subprocess
from typing import Callable, Iterator

import pytest


def _writable(folder: pathlib.Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.fixture
def read_only() -> Iterator[Callable[[pathlib.Path], pathlib.Path]]:
    """``read_only(folder)`` makes an existing folder unwritable, also for root, and restores it afterwards.

    Mode 0o555 stops other users; root needs the immutable attribute (``chattr +i``, which needs
    CAP_LINUX_IMMUTABLE). Skips the test where neither stops writes.
    """
    done: list[tuple[pathlib.Path, int, bool]] = []
    chattr = shutil.which("chattr")

    def make(folder: pathlib.Path) -> pathlib.Path:
        mode = stat.S_IMODE(folder.stat().st_mode)
        folder.chmod(0o555)
        immutable = False
        if _writable(folder) and chattr is not None:
            immutable = subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode == 0
        done.append((folder, mode, immutable))
        if _writable(folder):
            pytest.skip("cannot make a folder read-only here (root without CAP_LINUX_IMMUTABLE)")
        return folder

    yield make
    for folder, mode, immutable in reversed(done):
        if immutable:
            subprocess.run([chattr, "-i", str(folder)], check=True)
        with contextlib.suppress(OSError):
            os.chmod(folder, mode)
