"""The wheel: built from the checkout, installed without it, it runs ``allpet --help``, loads every preset and the
shipped foundation model."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

CHECK = """
import pathlib, sys
site = pathlib.Path(sys.argv[1]).resolve()
import ldm, pet_projection, tasks
for module in (ldm, pet_projection, tasks):
    assert site in pathlib.Path(module.__file__).resolve().parents, f"{module.__name__} from {module.__file__}"
from ldm.presets import PRESETS, load_config
for name in PRESETS:
    config = load_config(name)
    print(name, config.model.autoencoder.downsampling_factor)
from ldm.weights import load_model
model, config, folder = load_model()  # the shipped foundation model
assert site in folder.resolve().parents and config.model.n_tasks > 0, folder
from tasks.viewer import server
assert all((pathlib.Path(server.__file__).parent / name).is_file() for name in ("page.html", "page.js", "page.css"))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The wheel, installed (without dependencies: the test environment has them) into a folder of its own."""
    folder = tmp_path_factory.mktemp("wheel")
    source = folder / "source"  # a copy: the build writes build/ and *.egg-info next to pyproject.toml
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".parallelproj", "build", "dist",
                                                                "*.egg-info", "__pycache__", ".hypothesis",
                                                                ".pytest_cache", "test-artifacts", "runs"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder / "dist"),
                            str(source)], capture_output=True, text=True)
    if built.returncode != 0 and "Could not find a version that satisfies" in built.stderr:
        pytest.skip("pip could not fetch the build backend (setuptools) for the wheel")
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (folder / "dist").glob("allpet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not any(name.startswith(("benchmarks/", "tests/")) for name in names), "benchmarks and tests stay out"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(folder / "site"),
                    str(wheel)], check=True, capture_output=True)
    return folder / "site"


def _environment(site: pathlib.Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site), "PYTHONSAFEPATH": "1"}


def test_installed_package_loads_every_preset_from_its_own_files(installed: pathlib.Path, tmp_path: pathlib.Path):
    result = subprocess.run([sys.executable, "-c", CHECK, str(installed)], capture_output=True, text=True,
                            cwd=tmp_path, env=_environment(installed))
    assert result.returncode == 0, result.stderr[-2000:]
    from ldm.presets import PRESETS

    assert sorted(line.split()[0] for line in result.stdout.splitlines()) == sorted(PRESETS)


def test_installed_command_prints_its_help(installed: pathlib.Path, tmp_path: pathlib.Path):
    script = installed / "bin" / "allpet"
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=tmp_path,
                            env=_environment(installed))
    assert result.returncode == 0, result.stderr[-2000:]
    for command in ("demo", "simulate", "train", "sample", "view", "convert", "info", "bench"):
        assert command in result.stdout
    bench = subprocess.run([sys.executable, str(script), "bench"], capture_output=True, text=True, cwd=tmp_path,
                           env=_environment(installed))
    assert bench.returncode == 2 and "source checkout" in bench.stderr
