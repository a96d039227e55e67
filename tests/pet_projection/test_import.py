"""pet_projection imports with NumPy, SciPy and Numba alone: no torch, no CUDA probing, nothing above the core."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

# The projector API that ``pet_projection/__init__.py`` exports (docs/architecture.md: the projector core only).
PROJECTOR_API = {
    "AdjointOperator", "BroadcastDiagonalOperator", "ComposedOperator", "CylindricalScanner", "DiagonalOperator",
    "GaussianResolution", "ImageGrid", "LORProjector", "LinearOperator", "ListmodeProjector", "PETSinogramProjector",
    "PETSystemModel", "ParallelBeamGeometry", "ParallelBeamProjector", "ProjDataLayout", "RingScannerGeometry",
    "SinogramLayout", "TOFParameters", "attenuation_factors", "fbp", "lor_endpoints", "map_tv", "mlem", "osem",
}
# Packages that ``import pet_projection`` must not load: optional GPU / deep-learning libraries, the plotting
# library, and every layer above the projector core.
NOT_IMPORTED = ("torch", "cupy", "numba.cuda", "matplotlib", "pet_projection.attention", "pet_projection.masks",
                "pet_projection.simulation", "pet_projection.plotting", "pet_projection.autograd", "ldm", "tasks",
                "benchmarks")


def test_import_pulls_in_no_deep_learning_or_gpu_package() -> None:
    code = ("import sys, pet_projection; "
            "bad = [m for m in ('torch', 'cupy', 'numba.cuda') if m in sys.modules]; "
            "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_import_loads_the_projector_core_only() -> None:
    """A fresh interpreter's modules after ``import pet_projection``: nothing of the layers above, no torch."""
    code = "import json, sys, pet_projection; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    above = [m for m in loaded if any(m == name or m.startswith(name + ".") for name in NOT_IMPORTED)]
    assert above == []
    assert "pet_projection.projectors" in loaded and "pet_projection.kernels.cpu" in loaded  # the check sees modules


def test_public_api() -> None:
    import pet_projection

    for name in ("ImageGrid", "ParallelBeamGeometry", "ParallelBeamProjector", "LORProjector", "DiagonalOperator",
                 "LinearOperator", "AdjointOperator", "ComposedOperator"):
        assert hasattr(pet_projection, name)


def test_exports_exactly_the_projector_api() -> None:
    import pet_projection

    assert set(pet_projection.__all__) == PROJECTOR_API
    public = {name for name, value in vars(pet_projection).items()
              if not name.startswith("_") and not inspect.ismodule(value)}
    assert public == PROJECTOR_API
