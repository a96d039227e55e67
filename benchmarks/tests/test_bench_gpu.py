"""The GPU benchmark's launch sweep and host profile, checked without a GPU."""

from __future__ import annotations

import pytest

pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")

from pet_projection.kernels import cuda as cuda_kernels  # noqa: E402


def test_gpu_benchmark_sweeps_launch_settings_and_names_the_fastest_row() -> None:
    """The launch sweep of ``bench_projectors_gpu``: every K at the default block size, then K x other sizes."""
    from benchmarks.bench_projectors_gpu import _fastest, _launch_rows, _verdicts

    default = cuda_kernels.THREADS_PER_BLOCK
    rows = _launch_rows(cuda_kernels, [2, 4], [default, 2 * default])
    assert rows == [("allpet-cuda-k2", 2, default), ("allpet-cuda-k4", 4, default),
                    (f"allpet-cuda-k1-t{2 * default}", 1, 2 * default),
                    (f"allpet-cuda-k2-t{2 * default}", 2, 2 * default),
                    (f"allpet-cuda-k4-t{2 * default}", 4, 2 * default)]

    def row(forward: float, back: float) -> dict:
        return {"forward": {"median_ms": forward, "ray_samples_per_s": 1e11 / forward}, "back": {"median_ms": back}}

    batch = {"allpet-cuda": row(2.0, 4.5), "allpet-cuda-k2": row(1.5, 2.8), "allpet-cuda-cupy": row(1.0, 1.0),
             "astra-cuda-3d": row(4.0, 2.0)}
    assert _fastest(batch) == {"row": "allpet-cuda-k2", "forward_ms": 1.5, "back_ms": 2.8}  # CuPy: same kernels
    verdicts = _verdicts(batch, "allpet-cuda-k2")
    assert verdicts["back_over_forward_time"]["met"] and not verdicts["forward_speedup_over_fastest_astra"]["met"]
    assert verdicts["forward_speedup_over_fastest_astra"]["value"] == pytest.approx(4.0 / 1.5)
    assert not _verdicts(batch)["back_over_forward_time"]["met"]


def test_host_profile_builds_numba_cuda_kernel_arguments_from_tensors() -> None:
    """Per C-contiguous array: meminfo 0, parent 0, size, item size, pointer, shape, strides in bytes (numba's ABI)."""
    torch = pytest.importorskip("torch")
    from benchmarks.gpu.profile_host import _tensor_arguments

    a, b = torch.zeros((2, 3, 4)), torch.zeros((5, 6), dtype=torch.float64)
    assert _tensor_arguments((a, b)) == [0, 0, 24, 4, a.data_ptr(), 2, 3, 4, 48, 16, 4,
                                         0, 0, 30, 8, b.data_ptr(), 5, 6, 48, 8]


def test_host_time_profile_times_every_step_or_says_why_not(capsys: pytest.CaptureFixture) -> None:
    """``benchmarks/gpu/profile_host.py``: on a GPU it times each step of a call; without one it says so, exit 0."""
    pytest.importorskip("torch")
    from benchmarks.gpu.profile_host import main

    assert main(["--repeat", "3", "--top", "3"]) == 0
    output = capsys.readouterr().out
    assert "no CUDA device" in output or ("whole forward call" in output and "cProfile" in output)
