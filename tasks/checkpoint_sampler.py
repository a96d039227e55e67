"""A trained sinogram LDM loaded once from its checkpoint, sampling task inputs (``allpet sample``, ``allpet view``).

:class:`CheckpointSampler` loads the model of an ``allpet train`` checkpoint,
checks inputs against its training config (sinogram shape, image size, task),
reads ``allpet simulate`` folders as in training (its model input, and the ROI
edits of :mod:`tasks.attention_inputs`), samples sinograms with
:class:`SamplingSettings`, and reconstructs images on the training geometry.
torch and the ``ldm`` package are imported when a sampler is made, not with this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from pet_projection.attention import RoiEditSpec
from pet_projection.io.numpy_files import load_npy
from pet_projection.validation import check_choice, check_non_negative, positive_int

from .attention_inputs import simulated_inputs

__all__ = ["RECONSTRUCTIONS", "TASK_INPUTS", "CheckpointSampler", "SamplingSettings"]

# arrays each model task needs (data.task of the training config)
TASK_INPUTS = {"paired": (("input",),), "inpainting": (("input", "known"), ("mask",)), "unconditional": ()}
RECONSTRUCTIONS = ("fbp", "osem")
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class SamplingSettings:
    """How to sample: ``sampler`` (ddim, ddpm, dpm-solver), ``steps`` network calls, DDIM / bridge ``eta``
    (0: deterministic), TMA ``guidance_scale``, ``batch_size`` samples per model call, the ``seed`` of the
    sampling noise (one generator for all batches), autocast ``precision`` (fp32, bf16, fp16)."""

    sampler: str = "ddim"
    steps: int = 50
    eta: float = 0.0
    guidance_scale: float = 0.0
    batch_size: int = 8
    seed: int = 0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_choice("sampler", self.sampler, ("ddim", "ddpm", "dpm-solver"))
        positive_int("steps", self.steps)
        positive_int("batch_size", self.batch_size)
        check_non_negative("eta", self.eta)
        check_non_negative("guidance_scale", self.guidance_scale)
        check_choice("precision", self.precision, PRECISIONS)

    def record(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (field names as keys)."""
        return asdict(self)


class CheckpointSampler:
    """The model of an ``allpet train`` checkpoint, loaded once, on a device, in eval mode.

    Parameters
    ----------
    checkpoint : path
        A checkpoint folder (``step_NNNNNNNN``) or a run folder (its newest checkpoint), with ``config.yaml``.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    ema : bool
        The EMA weights (default) or the raw weights of the last step.

    Attributes
    ----------
    folder : Path
        The checkpoint folder.
    config : ldm.experiment.ExperimentConfig
        The run's training config.
    model : ldm.model.SinogramLDM
    device : torch.device

    A broken checkpoint (config or weights) is a ``ValueError`` naming the file.
    """

    def __init__(self, checkpoint: Any, device: str = "auto", ema: bool = True) -> None:
        from ldm.checkpoints import CONFIG_FILE, find_checkpoint, load_weights, read_run_config
        from ldm.model import SinogramLDM
        from ldm.runtime import resolve_device

        folder = find_checkpoint(checkpoint)
        if folder is None or not (folder / CONFIG_FILE).is_file():
            raise ValueError(f"no checkpoint with {CONFIG_FILE} found at {checkpoint}")
        self.folder, self.ema = folder, bool(ema)
        self.config = read_run_config(folder / CONFIG_FILE)
        self.device = resolve_device(device)
        self.model = SinogramLDM(self.config.model_config())
        load_weights(self.model, folder, ema=self.ema)  # a broken checkpoint fails before any input is read
        self.model.to(self.device).eval()

    @property
    def shape(self) -> tuple[int, int]:
        """The training sinograms' ``(n_views, n_bins)``."""
        return (self.config.data.n_views, self.config.data.n_bins)

    @property
    def labels(self) -> list[str]:
        """The integer labels the model takes: ``tracer``, ``region`` and / or (a prompted model) ``task``."""
        model = self.config.model
        return [name for name, count in (("tracer", model.n_tracers), ("region", model.n_regions),
                                         ("task", model.n_tasks)) if count]

    @property
    def takes_attention(self) -> bool:
        """Whether the TMA attention changes the output: a TMA condition, or the physics prior's unfiltered regions."""
        return bool(self.config.model.use_tma) or self.config.data.model_input == "physics_prior"

    # --- checks ------------------------------------------------------------------------------------

    def check_folder(self, path: Path) -> None:
        """An ``allpet simulate`` folder must pose the model's task on its geometry (from the manifest and sample 0)."""
        from pet_projection.simulation.dataset_folder import SimulatedDataset

        config = self.config
        folder = SimulatedDataset(path)
        if config.data.task != "paired":
            raise ValueError(f"the model was trained for the {config.data.task!r} task (data.task), but {path} is an "
                             f"allpet simulate {folder.task!r} dataset of input -> target pairs; it needs a model "
                             f"trained on such pairs (data.task: paired)")
        trained = self._training_task()
        if trained is not None and trained != folder.task:
            raise ValueError(f"the model was trained on the {trained!r} task ({config.data.path}), but {path} is an "
                             f"allpet simulate {folder.task!r} dataset")
        if len(folder) == 0:
            raise ValueError(f"{path} holds no samples")
        if folder.config.size != config.data.image_size:
            raise ValueError(f"the model was trained on {config.data.image_size} x {config.data.image_size} images "
                             f"(data.image_size), but the samples of {path} are {folder.config.size} x "
                             f"{folder.config.size}")
        self.check_shape(folder.load_array(0, "input").shape[-2:], path)

    def _training_task(self) -> Optional[str]:
        """The ``allpet simulate`` task of the folder a paired model was trained on, if that folder is still there."""
        from pet_projection.simulation.dataset_folder import SimulatedDataset

        data = self.config.data
        if data.source != "folder" or not data.path:
            return None
        try:
            return SimulatedDataset(data.path, require_complete=False).task
        except (ValueError, OSError):
            return None

    def check_shape(self, shape: Sequence[int], path: Any) -> None:
        """Sinograms of ``shape`` ``(views, bins)`` read from ``path`` must have the training shape."""
        trained = self.shape
        if tuple(shape) != trained:
            names = [name for name, a, b in zip(("n_views", "n_bins"), shape, trained) if a != b]
            raise ValueError(f"the inputs in {path} are sinograms of {tuple(shape)} (views, bins), but the model was "
                             f"trained on {trained} (data.n_views, data.n_bins): their {' and '.join(names)} differ")

    def check_inputs(self, inputs: Mapping[str, np.ndarray], path: Any) -> None:
        """Inputs read from ``path`` must hold samples of the training shape with the arrays of the model's task."""
        first = next(iter(inputs.values()))
        if len(first) == 0:
            raise ValueError(f"{path} holds no samples (its arrays have length 0)")
        self.check_shape(first.shape[-2:], path)
        task = self.config.data.task
        for options in TASK_INPUTS[task]:
            if not any(key in inputs for key in options):
                raise ValueError(f"the model was trained for the {task!r} task (data.task), which takes "
                                 f"{' or '.join(repr(key) for key in options)} arrays; {path} holds {sorted(inputs)}")

    # --- inputs ------------------------------------------------------------------------------------

    def unmixing_weights(self) -> np.ndarray:
        """The unmixing weights ``allpet train`` saved in the run (the checkpoint folder or one of the two above)."""
        from ldm.training_data import UNMIXING_WEIGHTS_FILE

        checkpoint = self.folder
        for folder in (checkpoint, checkpoint.parent, checkpoint.parent.parent):
            if (folder / UNMIXING_WEIGHTS_FILE).is_file():
                return load_npy(folder / UNMIXING_WEIGHTS_FILE)
        raise ValueError(f"the model was trained with data.model_input 'unmixing', but its run holds no "
                         f"{UNMIXING_WEIGHTS_FILE} (looked in {checkpoint} and the two folders above it)")

    def folder_inputs(self, path: Any, spec: Optional[RoiEditSpec] = None, samples: Optional[Sequence[int]] = None,
                      progress: bool = False, mode: Optional[str] = None) -> dict[str, np.ndarray]:
        """Inputs of an ``allpet simulate`` folder as the model was trained on them, attention after ``spec``.

        The run's ``data.model_input`` (physics prior, or the unmixing weights
        saved in the run) and labels, the attention's regions in ``mode``
        (``"segmentation"`` of the measured input, or the ``"oracle"`` lesion
        labels; default: the run's ``data.attention``); see
        :func:`tasks.attention_inputs.simulated_inputs`.
        """
        from .model_inputs import folder_model_input

        data = self.config.data
        weights = self.unmixing_weights() if data.model_input == "unmixing" else None
        return simulated_inputs(path, self.labels, folder_model_input(data), weights, spec, samples, progress,
                                mode or data.attention, window=self.config.model.coordinate_channels)

    # --- sampling ----------------------------------------------------------------------------------

    def sample(self, inputs: Mapping[str, np.ndarray], settings: SamplingSettings = SamplingSettings(),
               progress: bool = False) -> np.ndarray:
        """Sinograms ``(N, V, R)`` float32 for inputs of ``(N, V, R)`` sinograms and ``(N,)`` labels.

        Batches of ``settings.batch_size`` in order, all drawing from one
        generator seeded with ``settings.seed``, so the same inputs and
        settings give the same sinograms. Inputs the model cannot take are a ``ValueError``.
        A model with coordinate channels (the foundation model) takes each
        input's window row ``"window"`` ``(N, 4)``; inputs without one are in
        the training geometry (``data_projector``), whose row they get.
        """
        import torch
        from tqdm.auto import tqdm

        from ldm.batches import SINOGRAM_KEYS, WINDOW_KEY
        from ldm.runtime import AUTOCAST_DTYPES
        from ldm.sampling import sample
        from ldm.training_data import data_projector
        from ldm.windows import window_row

        if self.config.model.coordinate_channels and WINDOW_KEY not in inputs:
            row = window_row(data_projector(self.config.data).geometry)
            inputs = {**inputs, WINDOW_KEY: np.repeat(row[None], len(next(iter(inputs.values()))), axis=0)}

        generator = torch.Generator(self.device).manual_seed(settings.seed)
        dtype = AUTOCAST_DTYPES[settings.precision]
        n, size = len(next(iter(inputs.values()))), settings.batch_size
        chunks = []
        try:
            for first in tqdm(range(0, n, size), desc="sampling", unit="batch", disable=not progress):
                batch = {key: torch.from_numpy(value[first:first + size]).to(self.device)
                         for key, value in inputs.items()}
                batch.update({key: batch[key].unsqueeze(1) for key in SINOGRAM_KEYS if key in batch})
                with torch.autocast(device_type=self.device.type, dtype=dtype, enabled=dtype is not None):
                    out = sample(self.model, batch, sampler=settings.sampler, n_steps=settings.steps,
                                 eta=settings.eta, generator=generator, guidance_scale=settings.guidance_scale)
                chunks.append(out[:, 0].float().cpu().numpy())
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(f"the inputs do not fit the model: {error}") from None
        return np.concatenate(chunks)

    def sample_edited(self, path: Any, spec: RoiEditSpec, settings: SamplingSettings = SamplingSettings(),
                      samples: Optional[Sequence[int]] = None, progress: bool = False, mode: Optional[str] = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """The folder's outputs without and with the ROI edits ``spec``, each ``(N, V, R)`` float32.

        Both are sampled with ``settings`` (the same seed, so they differ by
        the edit alone), with the attention's regions in ``mode``
        (:meth:`folder_inputs`; default: the run's). An edit is local: the edited output keeps the
        unedited one on every ray whose attention the edit leaves unchanged,
        and takes the model's new output on the rays through the edited
        regions. (The latent model would otherwise carry the change to nearby
        rays too: docs/ldm-and-tasks.md, "ROI edits".)
        """
        plain = self.folder_inputs(path, None, samples, progress, mode)
        edited = self.folder_inputs(path, spec, samples, progress, mode)
        before = self.sample(plain, settings, progress)
        after = self.sample(edited, settings, progress)
        return before, localise_edit(before, after, plain["attention"], edited["attention"])

    def reconstruct(self, sinograms: np.ndarray, method: str = "osem", n_subsets: int = 8,
                    n_iterations: int = 4) -> np.ndarray:
        """Images ``(N, ny, nx)`` of sinograms ``(N, V, R)`` on the training geometry (``data_projector``).

        ``fbp``, or ``osem`` (``n_subsets`` x ``n_iterations``) of the sinograms
        clipped at 0, with the projector alone as system model.
        """
        from pet_projection import recon
        from pet_projection.physics import PETSystemModel

        from ldm.training_data import data_projector

        check_choice("method", method, RECONSTRUCTIONS)
        projector = data_projector(self.config.data)
        if method == "fbp":
            return np.asarray(recon.fbp(sinograms, projector))
        counts = np.clip(sinograms, 0.0, None)  # EM needs non-negative data
        return np.asarray(recon.osem(counts, PETSystemModel(projector), n_subsets, n_iterations))


def localise_edit(before: np.ndarray, after: np.ndarray, attention_before: np.ndarray,
                  attention_after: np.ndarray) -> np.ndarray:
    """``after`` on the rays whose attention an ROI edit changed, ``before`` on all others (arrays ``(N, V, R)``)."""
    return np.where(attention_after != attention_before, after, before).astype(np.float32)
