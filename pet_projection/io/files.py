"""Writing files so that a failure never leaves half a file behind."""

from __future__ import annotations

import contextlib
import os
import pathlib
from typing import Callable, Iterator, Union

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, write: Callable) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it to ``path`` (atomic on POSIX)."""
    with atomic_paths(path) as (temporary,):
        with open(temporary, "wb") as handle:
            write(handle)


@contextlib.contextmanager
def atomic_paths(*paths: PathLike) -> Iterator[tuple[pathlib.Path, ...]]:
    """Temporary paths next to ``paths``, renamed onto them when the block ends without an error.

    On an error every temporary file is removed and no target is touched; the
    renames happen only after all files are complete (a header is renamed
    after its data file, so a reader never sees a header without its data).
    """
    targets = [pathlib.Path(path) for path in paths]
    temporaries = tuple(path.with_name(f".{path.name}.{os.getpid()}.tmp") for path in targets)
    try:
        yield temporaries
        for temporary, target in zip(temporaries, targets):
            os.replace(temporary, target)
    finally:
        for temporary in temporaries:
            if temporary.exists():
                temporary.unlink()
