"""Where a run's samples come from: simulated from a seed, or read from ``allpet simulate`` folders.

Simulated: training sample ``i`` from ``sample_rng(seed, i)``, test sample
``j`` from ``sample_rng(seed + 1, j)``
(:func:`pet_projection.simulation.simulate_sample`). Read: the documented
npz + manifest format of :mod:`pet_projection.simulation.dataset_folder`
(``train_data``, ``test_data``), which also takes a user's own sinograms
written with :func:`~pet_projection.simulation.save_sample`.

Unseen test sets (:func:`unseen_test_sets`, ``PipelineConfig.unseen_test``):
anatomy the model never trained on, simulated with the training data's
settings (the run's :meth:`~tasks.pipeline_config.PipelineConfig.simulation_config`,
or the training folder's) but another body:

- ``"stir_thorax"``: the STIR-exercises FDG thorax and its CT attenuation map
  (``stir_exercises_thorax/`` of :func:`~pet_projection.io.third_party.third_party_folder`,
  read in place) as an image phantom of region ``chest``
  (:mod:`pet_projection.simulation.image_phantom`): each sample one of its
  axial slices, resampled onto the chest grid (500 mm across);
- ``"left_out_region"``: procedural phantoms of the region family the training
  data lack (:data:`LEFT_OUT_FAMILY`: trunk for brain training, brain for
  trunk, chest or abdomen training), on that region's grid.

Both keep the training data's pixels and views, so their sinograms have the
training shape and the model takes them as they are, while each region keeps
its own field of view (256 mm brain, 500 mm trunk), as the simulator gives
every region; the scoring uses each sample's own geometry. Sample ``i`` of
a set draws from ``sample_rng(seed + UNSEEN_SEED_OFFSET[name], i)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from pet_projection.io.third_party import third_party_folder
from pet_projection.simulation import SimulatedDataset, SimulationConfig, TaskSample, sample_rng, simulate_sample
from pet_projection.simulation.anatomy import ANATOMY_FAMILY, FIELD_OF_VIEW_MM

from .examples import check_same_geometry
from .pipeline_config import PipelineConfig

__all__ = ["LEFT_OUT_FAMILY", "STIR_THORAX_FILES", "UNSEEN_SEED_OFFSET", "EvaluationSet", "load_samples",
           "make_samples", "select_samples", "unseen_test_sets"]

# activity image and mu-map (1/cm) of the STIR-exercises thorax, in the third-party folder (its README: provenance)
STIR_THORAX_FILES = ("stir_exercises_thorax/FDG_g1.hv", "stir_exercises_thorax/CTAC_g1.hv")
# the region family left out of training, by the family trained on (pet_projection.simulation.anatomy.ANATOMY_FAMILY)
LEFT_OUT_FAMILY = {"brain": "trunk", "trunk": "brain"}
# seeds of the unseen sets, after the training (seed) and in-distribution test (seed + 1) samples
UNSEEN_SEED_OFFSET = {"stir_thorax": 2, "left_out_region": 3}


@dataclass(frozen=True)
class EvaluationSet:
    """A named test set: its samples and one line saying what they are (for reports)."""

    name: str
    description: str
    samples: list


def make_samples(config: PipelineConfig, progress: bool = True) -> tuple[list[TaskSample], list[TaskSample]]:
    """Training and test samples: read from ``train_data``/``test_data`` or simulated (module docstring)."""
    from tqdm.auto import tqdm

    if (config.train_data is None) != (config.test_data is None):
        raise ValueError("give both train_data and test_data (dataset folders), or neither to simulate")
    if config.train_data is not None:
        return (load_samples(config.train_data, config.task, config.n_train, progress),
                load_samples(config.test_data, config.task, config.n_test, progress))
    simulation = config.simulation_config()
    out = []
    for label, seed, n in (("training", config.seed, config.n_train), ("test", config.seed + 1, config.n_test)):
        out.append([simulate_sample(config.task, simulation, sample_rng(seed, i))
                    for i in tqdm(range(n), desc=f"simulate {label} {config.task}", disable=not progress,
                                  unit="sample")])
    return out[0], out[1]


def load_samples(path: Any, task: str, n: Optional[int] = None, progress: bool = True) -> list[TaskSample]:
    """The first ``n`` (default all) samples of a dataset folder written by ``allpet simulate`` for ``task``."""
    from tqdm.auto import tqdm

    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"dataset folder {str(path)!r} does not exist")
    dataset = SimulatedDataset(folder)
    if dataset.task != task:
        raise ValueError(f"{folder} holds a {dataset.task!r} dataset, but the task is {task!r}")
    n = len(dataset) if n is None else n
    if n > len(dataset):
        raise ValueError(f"{folder} holds {len(dataset)} samples, {n} were asked for")
    return [dataset[i] for i in tqdm(range(n), desc=f"read {folder.name}", disable=not progress, unit="sample")]


def select_samples(config: PipelineConfig, samples: Optional[tuple[Sequence[TaskSample], Sequence[TaskSample]]],
                   progress: bool = True) -> tuple[list[TaskSample], list[TaskSample]]:
    """A run's ``(train, test)``: ``samples`` (else :func:`make_samples`), cut to ``n_train`` / ``n_test``.

    ``ValueError`` for an empty set or samples of more than one geometry
    (:func:`~tasks.examples.check_same_geometry`).
    """
    train, test = samples if samples is not None else make_samples(config, progress)
    train, test = list(train)[:config.n_train], list(test)[:config.n_test]
    if not train or not test:
        raise ValueError("need at least one training and one test sample")
    check_same_geometry(train, test)
    return train, test


def _training_simulation(config: PipelineConfig) -> SimulationConfig:
    """The simulator settings of the training data: the run's, or those in the training folder's manifest."""
    if config.train_data is None:
        return config.simulation_config()
    return SimulatedDataset(Path(config.train_data)).config


def _unseen_simulation(name: str, training: SimulationConfig, n: int,
                       pretrained: bool = False) -> tuple[Optional[SimulationConfig], str]:
    """The simulator settings of unseen set ``name`` of ``n`` samples and its description, or None and why not.

    ``pretrained``: the run starts from pretrained weights (its description says what they saw).
    """
    procedural = dataclasses.replace(training, activity_image=None, mu_map_image=None)
    if name == "stir_thorax":
        folder = third_party_folder()
        if folder is None:
            return None, ("the STIR-exercises thorax files are not on this machine (set ALLPET_THIRD_PARTY_DATA to "
                          "the folder holding stir_exercises_thorax/)")
        activity, mu_map = (str(folder / path) for path in STIR_THORAX_FILES)
        simulation = dataclasses.replace(procedural, anatomy="chest", activity_image=activity, mu_map_image=mu_map,
                                         mu_map_unit="1/cm")
        return simulation, (f"{n} axial slices of the STIR-exercises FDG thorax (image phantom, Tsoumpas et al. "
                            f"2013) on the chest grid ({FIELD_OF_VIEW_MM['chest']:g} mm across)")
    families = {ANATOMY_FAMILY[region] for region in training.anatomies}
    if len(families) != 1:
        return None, f"the training data hold every region family ({', '.join(sorted(families))}): none is left out"
    region = LEFT_OUT_FAMILY[families.pop()]
    seen_in_pretraining = (" (pretrained weights may have seen it: the shipped foundation model was pretrained on "
                           "every region family)" if pretrained else "")
    return (dataclasses.replace(procedural, anatomy=region),
            f"{n} procedural {region} samples, a region family never in the task's training samples"
            f"{seen_in_pretraining}, on the {region} grid ({FIELD_OF_VIEW_MM[region]:g} mm across)")


def unseen_test_sets(config: PipelineConfig, progress: bool = True) -> tuple[list[EvaluationSet], dict[str, str]]:
    """The test sets of ``config.unseen_test`` (module docstring), ``n_unseen_test`` samples each.

    Returns the sets in the order asked for and, by name, why each set that
    cannot be made here was skipped (the STIR files missing; training data
    of every region family leave none out).
    """
    from tqdm.auto import tqdm

    if not config.unseen_test:
        return [], {}
    training = _training_simulation(config)
    sets, skipped = [], {}
    for name in config.unseen_test:
        simulation, description = _unseen_simulation(name, training, config.n_unseen_test,
                                                     pretrained=config.ldm_init is not None)
        if simulation is None:
            skipped[name] = description
            continue
        rng_seed = config.seed + UNSEEN_SEED_OFFSET[name]
        samples = [simulate_sample(config.task, simulation, sample_rng(rng_seed, i))
                   for i in tqdm(range(config.n_unseen_test), desc=f"simulate {name} {config.task}",
                                 disable=not progress, unit="sample")]
        sets.append(EvaluationSet(name, description, samples))
    return sets, skipped
