"""Batches in the sinogram LDM's format: the keys, collate functions, and the mapping of RMAS samples.

A batch is a dict of tensors (:class:`ldm.model.SinogramLDM`): sinograms
``(B, 1, V, R)`` float32 under :data:`SINOGRAM_KEYS` (``"target"``, and when
present ``"input"``, ``"known"``, ``"mask"``, ``"attention"``, ``"support"``)
int64 labels ``(B,)`` under :data:`LABEL_KEYS` (``"tracer"``,
``"region"``, ``"task"``: the prompt's class ids, :mod:`ldm.prompts`) and, for
models with coordinate channels, the float64 window rows ``(B, 4)`` under
:data:`WINDOW_KEY` (:mod:`ldm.windows`). Sinograms stay in their units
(line integrals): the model calibrates its scale.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import default_collate

__all__ = ["LABEL_KEYS", "RMASCollate", "SINOGRAM_KEYS", "WINDOW_KEY", "batch_from_rmas", "collate"]

SINOGRAM_KEYS = ("target", "input", "known", "mask", "attention", "support")
LABEL_KEYS = ("tracer", "region", "task")
WINDOW_KEY = "window"


def collate(items: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """Stack items into a batch dict (keys present in every item only)."""
    keys = set(items[0]).intersection(*items[1:])
    return default_collate([{key: item[key] for key in sorted(keys)} for item in items])


def batch_from_rmas(item_batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Map a collated :class:`~ldm.RMASDataset` batch to the model's batch format.

    ``full`` becomes ``target``; ``positive`` (the rays inside the mask)
    becomes both the task ``input`` and the ``known`` data; ``mask`` and
    ``attention`` keep their names; sinograms gain the channel axis
    ``(B, 1, n_views, n_radial)`` as float32; the labels of :data:`LABEL_KEYS`
    pass through as int64 when present.
    """
    for key in ("full", "positive", "mask", "attention"):
        if key not in item_batch:
            raise KeyError(f"RMAS batch has no {key!r}; it has {sorted(item_batch)}")
    sinogram = {"target": "full", "input": "positive", "known": "positive", "mask": "mask",
                "attention": "attention"}
    batch = {name: item_batch[key].unsqueeze(1).float() for name, key in sinogram.items()}
    batch.update({key: item_batch[key].long() for key in LABEL_KEYS if key in item_batch})
    return batch


class RMASCollate:
    """Collate :class:`ldm.RMASDataset` items into model batches (:func:`batch_from_rmas`).

    Parameters
    ----------
    task : {"unconditional", "inpainting"}
        ``"inpainting"`` keeps ``input = known = positive`` and ``mask`` (the
        model completes the rays outside the mask); ``"unconditional"`` keeps
        only ``target = full``, ``attention`` and the labels.
    support : ndarray ``(N, n_views, n_bins)``, optional
        Body support per base sinogram, added as ``"support"`` (by ``base_index``).
    """

    def __init__(self, task: str, support: Optional[np.ndarray] = None) -> None:
        if task not in ("unconditional", "inpainting"):
            raise ValueError(f"task must be 'unconditional' or 'inpainting' for RMAS data, got {task!r}")
        self.task = task
        self.support = None if support is None else torch.as_tensor(np.asarray(support, dtype=np.float32))

    def __call__(self, items: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
        collated = default_collate(list(items))
        batch = batch_from_rmas(collated)
        if self.task == "unconditional":
            for key in ("input", "known", "mask"):
                batch.pop(key)
        if self.support is not None:
            batch["support"] = self.support[collated["base_index"]].unsqueeze(1)
        return batch
