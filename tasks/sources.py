"""Where a run's samples come from: simulated from a seed, or read from ``allpet simulate`` folders.

Simulated: training sample ``i`` from ``sample_rng(seed, i)``, test sample
``j`` from ``sample_rng(seed + 1, j)``
(:func:`pet_projection.simulation.simulate_sample`). Read: the documented
npz + manifest format of :mod:`pet_projection.simulation.dataset_folder`
(``train_data``, ``test_data``), which also takes a user's own sinograms
written with :func:`~pet_projection.simulation.save_sample`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

from pet_projection.simulation import SimulatedDataset, TaskSample, sample_rng, simulate_sample

from .examples import check_same_geometry
from .pipeline_config import PipelineConfig

__all__ = ["load_samples", "make_samples", "select_samples"]


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
