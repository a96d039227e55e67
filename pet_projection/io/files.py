"""Writing files so that a failure never leaves half a file behind."""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
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


def fsync_file(path: PathLike) -> None:
    """Flush a written file's data to the disk."""
    with open(path, "rb+") as stream:
        os.fsync(stream.fileno())


def fsync_dir(path: PathLike) -> None:
    """Flush a folder's entries (created, renamed, deleted files) to the disk, where the platform can."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # not every platform can open a directory
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_tree(path: PathLike) -> None:
    """Delete a folder so that a kill part-way leaves no half-deleted folder under its name (renamed first)."""
    path = pathlib.Path(path)
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def replace_directory(temporary: PathLike, final: PathLike) -> None:
    """Publish a completely written folder ``temporary`` under the name ``final`` (replacing one there).

    Every file in ``temporary`` and the folder itself are flushed to the disk
    first, and the parent folder after the rename, so that after a crash
    ``final`` holds either the old folder or the whole new one.
    """
    temporary, final = pathlib.Path(temporary), pathlib.Path(final)
    for file in temporary.iterdir():
        fsync_file(file)
    fsync_dir(temporary)
    if final.exists():
        remove_tree(final)
    os.replace(temporary, final)
    fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_directory(path: PathLike) -> Iterator[pathlib.Path]:
    """Yield a fresh temporary folder next to ``path``; on success it replaces ``path``.

    If the body raises (bad input, Ctrl-C), the temporary folder is deleted
    and an existing ``path`` is left exactly as it was. On success an old
    ``path`` is first renamed aside, then the new folder renamed into place
    (``os.replace``), then the old one deleted.
    """
    final = pathlib.Path(path).resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(temporary, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)
