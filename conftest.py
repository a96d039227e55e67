"""Test setup for tests/ and benchmarks/tests/: a Numba cache that follows the kernel sources, the CUDA simulator
without a GPU, markers, hypothesis profiles, and the third-party STIR files."""

from __future__ import annotations

import hashlib
import os
import pathlib
import tempfile
from typing import Any

# Numba's on-disk cache is keyed on the file of the cached function only, not on
# the files it calls; key the cache folder on every kernel source so an edited
# kernel is never served from a stale cache. Must run before numba is imported.
_KERNELS = pathlib.Path(__file__).resolve().parent / "pet_projection" / "kernels"
_digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(_KERNELS.glob("*.py")))).hexdigest()[:16]
os.environ.setdefault("NUMBA_CACHE_DIR", str(pathlib.Path(tempfile.gettempdir()) / f"allpet-numba-{_digest}"))

# Without an NVIDIA device, CUDA kernels run in Numba's CUDA simulator (tiny sizes, on the CPU).
if not pathlib.Path("/dev/nvidiactl").exists():
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# "default" (CI) draws the same examples on every run, so CI is reproducible; "thorough" explores at random.
settings.register_profile("default", deadline=None, max_examples=40, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", deadline=None, max_examples=400,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped with a reason when none is present)")
    config.addinivalue_line("markers", "slow: large sizes; deselect with -m 'not slow'")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """With ``ALLPET_LIVE_FAILURES=1``, print each failure's traceback as it happens (GPU runs that a time limit
    may cut before pytest's summary; see benchmarks/gpu/run_device_checks.sh)."""
    if report.failed and os.environ.get("ALLPET_LIVE_FAILURES") == "1":
        print(f"\n--- {report.nodeid} ({report.when}) failed:\n{report.longreprtext[-4000:]}\n", flush=True)


@pytest.fixture(scope="session")
def third_party() -> pathlib.Path:
    """The third-party STIR files (``shared/data/third_party``), read in place; skips if this machine lacks them."""
    from pet_projection.io.third_party import third_party_folder

    folder = third_party_folder()
    if folder is None:
        pytest.skip("the third-party STIR files are not on this machine (set ALLPET_THIRD_PARTY_DATA)")
    return folder


@pytest.fixture(scope="session")
def parallelproj() -> Any:
    """parallelproj's Python wrapper with its C library: skips with the reason where it is not installed, fails
    instead where ``ALLPET_REQUIRE_PARALLELPROJ=1`` (CI builds it from shared/third_party, see .ci/run)."""
    import contextlib
    import io

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # its import prints a banner
            import parallelproj as module
        if module.lib_parallelproj_c_fname is None:
            raise ImportError("parallelproj's C library was not found (set PARALLELPROJ_C_LIB)")
    except ImportError as error:
        if os.environ.get("ALLPET_REQUIRE_PARALLELPROJ") == "1":
            pytest.fail(f"parallelproj is required here but cannot be used: {error}")
        pytest.skip(f"parallelproj is not installed (conda-forge only; build it from source as .ci/run does): {error}")
    return module
