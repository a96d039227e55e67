"""Ablation variants: each switches one thing off; the command writes its table."""

from __future__ import annotations

import json
import pathlib

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tasks.ablations import ablation_variants  # noqa: E402
from tasks.cli.ablate import main as ablate  # noqa: E402
from tasks.demo import demo_config  # noqa: E402


def test_each_variant_switches_one_thing() -> None:
    variants = ablation_variants(demo_config("low_dose", model="tiny", guidance_scale=1.5), 500, 5000)
    flags = {name: (c.n_train, c.use_rmas, c.use_tma, c.use_constraints, c.physics_prior)
             for name, c in variants.items()}
    assert flags == {"full": (500, True, True, True, True), "no RMAS/DMM": (500, False, True, True, True),
                     "no TMA": (500, True, False, True, True), "no constraints": (500, True, True, False, True),
                     "no physics prior": (500, True, True, True, False),
                     "large, no augmentation": (5000, False, True, True, True)}
    assert all(not c.baselines for c in variants.values())
    # TMA guidance needs TMA: the variant without TMA samples without guidance, the others keep it
    assert variants["no TMA"].guidance_scale == 0.0 and variants["full"].guidance_scale == 1.5
    # count resampling is augmentation too: the large variant drops it, the others keep the base config's
    resampled = ablation_variants(demo_config("low_dose", model="tiny", count_resampling=2), 500, 5000)
    assert {name: c.count_resampling for name, c in resampled.items()} == {
        name: 0 if name == "large, no augmentation" else 2 for name in resampled}


@pytest.mark.parametrize("n_small, n_large", [(0, 10), (20, 10)])
def test_bad_training_sizes(n_small: int, n_large: int) -> None:
    with pytest.raises(ValueError, match="n_small <= n_large"):
        ablation_variants(demo_config("low_dose", model="tiny"), n_small, n_large)


def test_the_command_writes_its_table(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "ablations"
    assert ablate(["--quick", "--variants", "full", "no TMA", "--out", str(out), "--no-progress"]) == 0
    table = (out / "ablations.md").read_text(encoding="utf-8")
    assert "| full |" in table and "| no TMA |" in table and "lesion |bias| change with TMA" in table
    assert set(json.loads((out / "ablations.json").read_text())["configs"]) == {"full", "no TMA"}
    assert ablate(["--quick", "--variants", "everything", "--out", str(out), "--no-progress"]) == 2
    assert (out / "ablations.md").read_text(encoding="utf-8") == table  # a failed run keeps the earlier table
