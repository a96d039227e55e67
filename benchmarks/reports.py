"""Writing a benchmark's results: its report as JSON and its Markdown text beside it, each file replaced atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from pet_projection.io.files import atomic_write

__all__ = ["shown_path", "write_results"]


def shown_path(path: Path) -> str:
    """``path`` as a report shows it: relative to the current folder when inside it (a repository checkout), else
    absolute, so reports name no machine's folders."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def write_results(out: Path, report: Optional[dict], text: str) -> None:
    """``report`` as ``out.json`` (none when None) and its Markdown ``text`` as ``out.md``; prints the text.

    The folder is created; each file is written to a temporary file and then
    renamed, so an interrupted run leaves the previous results whole.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if report is not None:
        encoded = json.dumps(report, indent=1, default=float).encode("utf-8")
        atomic_write(out.with_suffix(".json"), lambda handle: handle.write(encoded))
    atomic_write(out.with_suffix(".md"), lambda handle: handle.write(text.encode("utf-8")))
    print(text)
