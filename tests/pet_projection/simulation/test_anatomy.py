"""Body regions (pet_projection.simulation.anatomy) and their phantoms: the ROI menu, variety, slice ranges."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import ndimage

from pet_projection.attention import AttentionRegions, RoiEdit, RoiEditSpec
from pet_projection.simulation import ANATOMIES, REGION_LABELS, anatomy_grid, make_phantom
from pet_projection.simulation.anatomy import SLICE_RANGE_MM, anatomy_regions

# The ROI menu of the ALL-PET paper, per body region where it is imaged (lesions: hot = hyper, cold = hypo).
LOBES = {"frontal_lobe", "parietal_lobe", "temporal_lobe", "occipital_lobe"}
ROI_MENU = {
    "brain": LOBES | {"brainstem"},
    "chest": {"lymph_nodes_cervical", "lymph_nodes_axillary", "lymph_nodes_mediastinal", "liver"},
    "abdomen": {"liver", "spleen", "lymph_nodes_para_aortic", "lymph_nodes_pelvic", "lymph_nodes_inguinal"},
    "trunk": {"liver", "spleen"} | {f"lymph_nodes_{s}" for s in ("cervical", "axillary", "mediastinal", "para_aortic",
                                                                  "pelvic", "inguinal")},
}


def _present(phantom) -> set[str]:
    labels = set(np.unique(phantom.labels).tolist())
    return {name for name, label in phantom.names.items() if label in labels}


@pytest.mark.parametrize("region", ANATOMIES)
def test_every_roi_of_the_menu_is_a_named_label_where_its_region_is_imaged(region):
    grid = anatomy_grid(region, 128)
    seen: set[str] = set()
    kinds: set[str] = set()
    for seed, z in itertools.product(range(3), np.linspace(*SLICE_RANGE_MM[region], 24)):
        phantom = make_phantom(region, grid, np.random.default_rng(seed), axial_position_mm=float(z), n_lesions=(2, 2))
        assert set(phantom.names) >= set(anatomy_regions(region))  # the whole menu is named in every sample
        seen |= _present(phantom)
        kinds |= {lesion.kind for lesion in phantom.lesions}
    assert ROI_MENU[region] <= seen, sorted(ROI_MENU[region] - seen)
    assert kinds == {"hot", "cold"}  # hyper- and hypometabolic lesions
    if region == "brain":
        assert "grey_matter" not in seen and "lungs" not in seen  # the cortex is split into the lobes
    else:
        assert not seen & LOBES


def test_roi_menu_names_are_selectable_in_roi_edits():
    phantom = make_phantom("trunk", anatomy_grid("trunk", 64, n_slices=120), np.random.default_rng(0),
                           axial_position_mm=0.0, n_lesions=(0, 0))
    regions = AttentionRegions.from_table(phantom.region_table())
    assert regions.weights["lymph_nodes_mediastinal"] == 0.0 and regions.weights["liver"] == 0.0
    spec = RoiEditSpec([RoiEdit.add("lymph_nodes_mediastinal", 0.5), RoiEdit.add("liver", 0.25)])
    edited = spec.apply(regions, phantom.grid)
    assert edited.weights["lymph_nodes_mediastinal"] == 0.5 and edited.weights["liver"] == 0.25


@pytest.mark.parametrize("region", ANATOMIES)
def test_every_slice_in_the_range_cuts_the_body(region):
    grid = anatomy_grid(region, 32)
    for seed, z in itertools.product(range(20), np.linspace(*SLICE_RANGE_MM[region], 17)):
        phantom = make_phantom(region, grid, np.random.default_rng(seed), axial_position_mm=float(z))
        assert phantom.body_mask.sum() > 20, (seed, z)


@pytest.mark.parametrize("region, z_mm, organ", [("brain", 10.0, "white_matter"), ("chest", 120.0, "lungs"),
                                                  ("abdomen", -100.0, "kidneys"), ("trunk", -40.0, "liver")])
def test_slices_differ_in_anatomy_not_only_in_noise(region, z_mm, organ):
    # measured (docs/results/simulation.md): organ area CV 0.14 (white matter) to 0.30 (kidneys) at one slice
    # position, every one of 500 random slices distinct; the limits leave a margin
    grid = anatomy_grid(region, 64)
    phantoms = [make_phantom(region, grid, np.random.default_rng(seed), axial_position_mm=z_mm, n_lesions=(0, 0))
                for seed in range(60)]
    areas = np.array([np.sum(p.labels == REGION_LABELS[organ]) for p in phantoms])
    assert np.mean(areas > 0) > 0.9 and areas.std() / areas.mean() > 0.1
    small = anatomy_grid(region, 32)
    slices = {make_phantom(region, small, np.random.default_rng(seed), n_lesions=(0, 0)).labels.tobytes()
              for seed in range(200)}
    assert len(slices) >= 198


def test_trunk_organs_vary_in_number():
    counts = []
    for seed in range(10):
        phantom = make_phantom("abdomen", anatomy_grid("abdomen", 96, n_slices=40), np.random.default_rng(seed),
                               axial_position_mm=-220.0, n_lesions=(0, 0))
        counts.append(ndimage.label(phantom.labels == REGION_LABELS["bowel"])[1])
    assert len(set(counts)) >= 3 and min(counts) >= 1


def test_bad_region():
    with pytest.raises(ValueError, match="body region"):
        anatomy_regions("elbow")
    with pytest.raises(ValueError, match="hot_node_probability"):
        make_phantom("trunk", anatomy_grid("trunk", 16), np.random.default_rng(0), hot_node_probability=2.0)
