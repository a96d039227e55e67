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


# --- output checks before long work (used by the allpet commands) -------------------------------------------------

def target_of_temporary(path: PathLike) -> pathlib.Path:
    """The file that a temporary path of :func:`atomic_paths` stands for (``DIR/.NAME.PID.tmp`` -> ``DIR/NAME``).

    Other paths come back unchanged; error messages use it to name the user's file, not the temporary one.
    """
    path = pathlib.Path(path)
    parts = path.name.split(".")
    if len(parts) >= 4 and parts[0] == "" and parts[-1] == "tmp" and parts[-2].isdigit():
        return path.with_name(".".join(parts[1:-2]))
    return path


def check_writable_folder(path: PathLike) -> pathlib.Path:
    """``path`` if files can be written in it: a writable folder, or one that can be created there.

    Raises ``NotADirectoryError`` or ``PermissionError`` naming ``path`` (nothing is created).
    """
    import errno

    path = pathlib.Path(path)
    existing = next(folder for folder in (path, *path.absolute().parents) if folder.exists())
    if not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is not a folder" if existing == path
                                 else f"cannot be created: {existing} is a file", str(path))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, "is a folder that cannot be written" if existing == path
                              else f"cannot be created: {existing} cannot be written", str(path))
    return path


def check_output_file(path: PathLike, *, overwrite: bool = False) -> pathlib.Path:
    """``path`` if a file can be written there: not a folder, in a writable folder, and new unless ``overwrite``.

    Raises ``IsADirectoryError``, ``FileExistsError``, ``NotADirectoryError`` or ``PermissionError``
    naming ``path``; call it before long work, so that a bad output path fails at once.
    """
    import errno

    path = pathlib.Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(path))
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise FileExistsError(errno.EEXIST, "already exists (nothing was overwritten)", str(path))
    check_writable_folder(path.parent)
    return path
