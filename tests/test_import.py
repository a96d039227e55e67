"""pet_projection imports with NumPy, SciPy and Numba alone: no torch, no CUDA probing."""

from __future__ import annotations

import subprocess
import sys


def test_import_pulls_in_no_deep_learning_or_gpu_package() -> None:
    code = ("import sys, pet_projection; "
            "bad = [m for m in ('torch', 'cupy', 'numba.cuda') if m in sys.modules]; "
            "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_public_api() -> None:
    import pet_projection

    for name in ("ImageGrid", "ParallelBeamGeometry", "ParallelBeamProjector", "LORProjector", "DiagonalOperator",
                 "LinearOperator", "AdjointOperator", "ComposedOperator"):
        assert hasattr(pet_projection, name)
