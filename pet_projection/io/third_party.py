"""Where the third-party reference files are: STIR's test and demo data, read in place and never copied."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

__all__ = ["third_party_folder"]

ENVIRONMENT_VARIABLE = "ALLPET_THIRD_PARTY_DATA"


def third_party_folder() -> Optional[Path]:
    """The folder of the third-party files: ``stir_recon_test_pack/``, ``stir_recon_demo/``, ``stir_exercises_thorax/``.

    ``$ALLPET_THIRD_PARTY_DATA`` if set, else ``shared/data/third_party``
    beside the source checkout, else ``/work/shared/data/third_party`` (this
    project's machines); the first that holds a ``README.md`` (the files'
    provenance). ``None`` if none does.
    """
    candidates = [os.environ.get(ENVIRONMENT_VARIABLE),
                  Path(__file__).resolve().parents[3] / "shared" / "data" / "third_party",
                  "/work/shared/data/third_party"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    return None
