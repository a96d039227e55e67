"""Tracers (pet_projection.simulation.tracers, tracer_tables, tracer_model): half-lives, uptake, kinetics, registry.

Every tracer in every body region for every task is simulated here at a small size.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from pet_projection.simulation import (ANATOMIES, REGION_LABELS, TASKS, TRACERS, SimulationConfig, anatomy_grid,
                                       get_tracer, make_phantom, register_tracer, simulate_sample)
from pet_projection.simulation.patient import region_kinetics
from pet_projection.simulation.tracers import TRACERS as REGISTRY

LOBES = ("frontal_lobe", "parietal_lobe", "temporal_lobe", "occipital_lobe")


def test_builtin_tracers_and_their_half_lives():
    # NNDC / ENSDF: 18F 109.77 min, 11C 20.364 min, 68Ga 67.71 min
    assert list(TRACERS)[:4] == ["fdg", "met", "fdopa", "psma"]  # the order is the models' tracer label
    expected = {"fdg": 109.77, "met": 20.364, "fdopa": 109.77, "psma": 67.71}
    for name, half_life in expected.items():
        assert get_tracer(name).half_life_min == half_life
    # PSMA-11 at 60 min (Fendler et al. 2017), FDG at 60 min (Boellaard et al. 2015)
    assert get_tracer("psma").reference_frame_min == get_tracer("fdg").reference_frame_min == (60.0, 70.0)


@pytest.mark.parametrize("name", sorted(TRACERS))
def test_every_tracer_has_every_region(name):
    tracer = get_tracer(name)
    assert set(tracer.uptake) == set(REGION_LABELS)
    # the reference frame reproduces each table value (K1 is solved for it)
    for region in ("liver", "kidneys", "deep_grey_matter", "salivary_glands", "lymph_nodes_pelvic"):
        value = tracer.frame_values(tracer.uptake[region], [tracer.reference_frame_min], decay=False)[0]
        assert value == pytest.approx(tracer.uptake[region].suv, rel=1e-9), region


def test_uptake_orderings_of_the_published_patterns():
    fdg, met, fdopa, psma = (get_tracer(name).uptake for name in ("fdg", "met", "fdopa", "psma"))
    suv = lambda table, name: table[name].suv  # noqa: E731
    # FDOPA: striatum (deep grey matter) above every cortical lobe, the rest of the brain low
    assert all(suv(fdopa, "deep_grey_matter") > 1.8 * suv(fdopa, lobe) for lobe in LOBES)
    # PSMA-11: kidney > salivary glands > spleen, liver, bowel > blood > brain (Kurash et al. 2020)
    assert suv(psma, "kidneys") > suv(psma, "salivary_glands") > suv(psma, "liver") > suv(psma, "blood_pool")
    assert min(suv(psma, name) for name in ("spleen", "bowel", "liver")) > 3 * suv(psma, "blood_pool")
    assert max(suv(psma, name) for name in LOBES + ("white_matter", "deep_grey_matter")) < 0.2
    # FDG: cortex about 2.5-3 x white matter; methionine: low grey/white contrast, high liver
    assert 2.4 < suv(fdg, "frontal_lobe") / suv(fdg, "white_matter") < 3.0
    assert suv(met, "grey_matter") / suv(met, "white_matter") < 1.6 and suv(met, "liver") > suv(fdg, "liver")


def test_kinetics_of_delayed_frames():
    frames = [(60.0, 70.0), (120.0, 130.0)]
    # FDOPA: striatal trapping, so the striatum-to-cortex ratio rises from the reference frame to later ones
    fdopa = get_tracer("fdopa")
    striatum, cortex = (fdopa.frame_values(fdopa.uptake[name], [(20.0, 30.0), (120.0, 130.0)], decay=False)
                        for name in ("deep_grey_matter", "frontal_lobe"))
    assert striatum[1] / cortex[1] > striatum[0] / cortex[0]
    # PSMA-11: tumour uptake rises from 1 h to 2 h while liver washes out (Afshar-Oromieh et al. 2017)
    psma = get_tracer("psma")
    tumour = psma.frame_values(type(psma.uptake["liver"])(10.0, *psma.hot_lesion), frames, decay=False)
    liver = psma.frame_values(psma.uptake["liver"], frames, decay=False)
    assert tumour[1] > tumour[0] and liver[1] < liver[0]
    # counts follow the physical decay: Ga-68 loses more than F-18 over the hour
    decayed = psma.frame_values(psma.uptake["liver"], frames, decay=True)
    np.testing.assert_allclose(decayed / liver, np.exp(-math.log(2) / 67.71 * np.array([65.0, 125.0])), rtol=2e-3)


@pytest.mark.parametrize("region", ANATOMIES)
@pytest.mark.parametrize("tracer", ["fdg", "met", "fdopa", "psma"])
def test_every_tracer_in_every_region_for_every_task(region, tracer):
    second = "psma" if tracer != "psma" else "fdopa"
    config = SimulationConfig(size=16, n_views=12, anatomy=region, tracer=tracer, second_tracer=second,
                              n_lesions=(1, 2))
    for task in TASKS:
        sample = simulate_sample(task, config, 11)
        assert sample.metadata["region"] == sample.metadata["anatomy"] == region
        assert sample.metadata["tracers"][0] == tracer
        assert np.all(np.isfinite(sample.target_image)) and sample.input.sum() > 0
        if task in ("tracer_separation", "tracer_conversion"):
            assert sample.metadata["tracers"] == [tracer, second]


def test_hot_lymph_nodes_follow_the_first_tracer():
    def node_lesions(tracer: str) -> list:
        config = SimulationConfig(size=128, n_views=16, anatomy="abdomen", tracer=tracer, n_lesions=(0, 0))
        return [lesion for seed in range(16) for lesion in simulate_sample("low_dose", config, seed).metadata["lesions"]
                if lesion["host"].startswith("lymph_nodes_")]

    assert node_lesions("psma") and all(lesion["kind"] == "hot" for lesion in node_lesions("psma"))
    assert node_lesions("fdopa") == []  # no hot nodes for FDOPA and methionine


def test_a_hot_node_is_hot_with_psma_and_a_normal_node_with_fdopa():
    grid = anatomy_grid("trunk", 128, n_slices=40)
    phantom = make_phantom("trunk", grid, np.random.default_rng(2), n_lesions=(0, 0), axial_position_mm=-300.0,
                           hot_node_probability=0.5)
    nodes = [lesion for lesion in phantom.lesions if lesion.host.startswith("lymph_nodes_")]
    assert nodes and all(lesion.kind == "hot" and lesion.name.startswith("lesion_hot_") for lesion in nodes)
    psma = region_kinetics(phantom, get_tracer("psma"), np.random.default_rng(0), 0.0)
    fdopa = region_kinetics(phantom, get_tracer("fdopa"), np.random.default_rng(0), 0.0)
    for node in nodes:
        assert psma[node.name].suv >= 3.0 * psma[node.host].suv  # PSMA hot contrast 3-15
        assert fdopa[node.name] == fdopa[node.host]  # FDOPA shows no hot nodes: a metastatic node looks normal


def test_register_a_user_tracer():
    fdg = get_tracer("fdg")
    custom = replace(fdg, name="fdg_test_custom", description="FDG with a hot frontal lobe",
                     uptake={**fdg.uptake, "frontal_lobe": replace(fdg.uptake["frontal_lobe"], suv=12.0)})
    try:
        assert register_tracer(custom) is get_tracer("fdg_test_custom")
        sample = simulate_sample("low_dose", SimulationConfig(size=16, n_views=12, anatomy="brain",
                                                              tracer="fdg_test_custom"), 0)
        assert sample.metadata["tracers"] == ["fdg_test_custom"]
        with pytest.raises(ValueError, match="registered already"):
            register_tracer(custom)
        register_tracer(custom, replace=True)
    finally:
        REGISTRY.pop("fdg_test_custom", None)
    partial = replace(fdg, name="partial", uptake={"blood_pool": fdg.uptake["blood_pool"]})
    with pytest.raises(ValueError, match="no uptake for the regions"):
        register_tracer(partial)
    with pytest.raises(ValueError, match="lower-case identifier"):
        replace(fdg, name="Bad Name")
    with pytest.raises(ValueError, match="blood_pool"):
        replace(fdg, name="no_blood", uptake={"liver": fdg.uptake["liver"]})
    with pytest.raises(ValueError, match="hot_node_probability"):
        replace(fdg, hot_node_probability=1.5)
