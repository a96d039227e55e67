"""One home for the ``allpet`` commands' error handling and output checks.

Each command's ``main`` is wrapped by :func:`command`: a known error (``ValueError``,
``TypeError``, ``OSError`` with a message) becomes one line ``allpet CMD: message`` on
stderr and exit code 2; Ctrl-C exits with 130 (128 + SIGINT, as shells report it) and
no traceback. Outputs are written atomically, so either way earlier outputs stay as
they were. :func:`check_outputs` checks output paths before any long work.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from pet_projection.io.files import check_output_file, target_of_temporary

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "KNOWN_ERRORS", "check_outputs", "command", "error_message",
           "run_command"]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
KNOWN_ERRORS = (ValueError, TypeError, OSError)

Main = Callable[[Optional[Sequence[str]]], int]


def error_message(error: BaseException) -> str:
    """One line for the user: ``FILE: reason`` for an OS error (never a temporary file's name), else the message."""
    if isinstance(error, OSError) and error.strerror:
        names = [str(target_of_temporary(name)) for name in (error.filename, error.filename2) if name is not None]
        text = f"{' -> '.join(names)}: {error.strerror}" if names else error.strerror
    else:
        text = str(error)
    return " ".join(text.split())


def run_command(name: str, body: Callable[[], int]) -> int:
    """``body()``'s exit code; known errors -> one line on stderr and 2, Ctrl-C -> 130 (no traceback)."""
    try:
        return body()
    except KeyboardInterrupt:
        print(f"allpet {name}: interrupted (outputs written before are unchanged)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KNOWN_ERRORS as error:
        message = error_message(error)
        if not message:  # no message: a bug, not bad input
            raise
        print(f"allpet {name}: {message}", file=sys.stderr)
        return EXIT_ERROR


def command(name: str) -> Callable[[Main], Main]:
    """Decorator of a command's ``main(argv) -> int``: its errors handled by :func:`run_command`."""
    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def run(argv: Optional[Sequence[str]] = None) -> int:
            return run_command(name, lambda: main(argv))
        return run
    return decorate


def check_outputs(paths: Iterable[Path], overwrite: bool) -> None:
    """Refuse output files that exist (unless ``overwrite``), are folders, or lie in a folder that cannot be written."""
    for path in paths:
        try:
            check_output_file(path, overwrite=overwrite)
        except FileExistsError as error:
            raise FileExistsError(error.errno, "already exists; pass --overwrite to replace it", str(path)) from None
