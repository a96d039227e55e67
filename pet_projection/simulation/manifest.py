"""The manifest of a dataset folder: read safely, and its records of the sample files (size and SHA-256).

See :mod:`.dataset_folder` for the folder's layout and what the records are for.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import time
from typing import Any, Optional, Union

from ..io.files import atomic_write
from ..io.reading import open_regular

__all__ = ["MANIFEST_INTERVAL_S", "ManifestWriter", "file_record", "read_manifest", "record_mismatch",
           "sample_records"]

PathLike = Union[str, os.PathLike]

# Most seconds between two rewrites of the manifest (with the records of the samples written so far) during a run
MANIFEST_INTERVAL_S = 5.0


def file_record(path: PathLike) -> dict[str, Any]:
    """``{"bytes": size, "sha256": hex digest}`` of the file ``path`` (a manifest's record of a sample file)."""
    digest = hashlib.sha256()
    with open_regular(path) as (handle, size):
        for block in iter(lambda: handle.read(2 ** 20), b""):
            digest.update(block)
    return {"bytes": size, "sha256": digest.hexdigest()}


def record_mismatch(path: pathlib.Path, record: Optional[dict]) -> Optional[str]:
    """Why the file ``path`` does not match its manifest ``record`` (None if it matches)."""
    if record is None:
        return "the manifest has no record of it"
    try:
        found = file_record(path)
    except (OSError, ValueError) as error:
        return str(error)
    if found["bytes"] != record["bytes"]:
        return f"it has {found['bytes']} bytes, the manifest records {record['bytes']} (truncated or replaced)"
    if found["sha256"] != record["sha256"]:
        return "its SHA-256 differs from the manifest's record (damaged or replaced)"
    return None


def read_manifest(path: PathLike) -> dict:
    """The JSON object in the manifest file ``path``; ``ValueError`` naming the file if it holds anything else."""
    path = pathlib.Path(path)
    try:
        with open_regular(path) as (handle, _):
            manifest = json.loads(handle.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    except RecursionError:
        raise ValueError(f"{path} is nested too deeply to be a manifest") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} holds a JSON {type(manifest).__name__}, not the object of an allpet manifest")
    return manifest


def sample_records(manifest: dict, n_samples: int) -> list[Optional[dict]]:
    """The manifest's ``sample_files`` as ``n_samples`` entries; malformed entries become None (no record)."""
    listed = manifest.get("sample_files")
    listed = listed if isinstance(listed, list) else []
    records: list[Optional[dict]] = []
    for index in range(n_samples):
        entry = listed[index] if index < len(listed) else None
        valid = (isinstance(entry, dict) and isinstance(entry.get("bytes"), int)
                 and not isinstance(entry.get("bytes"), bool) and isinstance(entry.get("sha256"), str))
        records.append({"bytes": entry["bytes"], "sha256": entry["sha256"]} if valid else None)  # type: ignore[index]
    return records


class ManifestWriter:
    """The manifest of a run of :func:`~.dataset_folder.write_dataset` and its sample records, rewritten
    (atomically) when a sample is recorded and :data:`MANIFEST_INTERVAL_S` seconds have passed since the last
    rewrite, and on :meth:`write`."""

    def __init__(self, path: pathlib.Path, manifest: dict, records: list[Optional[dict]]) -> None:
        self.path, self.manifest, self.records = path, manifest, records
        self.written_at = -float("inf")

    def record(self, index: int, record: Optional[dict]) -> None:
        """Keep ``record`` (of :func:`file_record`; None: nothing to record) as sample ``index``'s."""
        if record is not None:
            self.records[index] = record
            if time.monotonic() - self.written_at >= MANIFEST_INTERVAL_S:
                self.write()

    def write(self) -> None:
        """Rewrite the manifest file now, with the records kept so far."""
        text = json.dumps({**self.manifest, "sample_files": self.records}, indent=1).encode()
        atomic_write(self.path, lambda handle: handle.write(text))
        self.written_at = time.monotonic()
