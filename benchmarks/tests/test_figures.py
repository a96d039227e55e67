"""The figure scripts draw from the recorded results."""

from __future__ import annotations

import pytest


def test_anatomy_warps_figure(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    from benchmarks.plot_anatomy_warps import main

    assert main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "anatomy_warps_example.png").stat().st_size > 10_000


def test_synthesis_pairs_figure(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    from benchmarks.plot_synthesis_pairs import main

    assert main(["--steps", "4", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "synthesis_pairs.png").stat().st_size > 10_000
