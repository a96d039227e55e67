"""Metrics of generated sinograms (issue 36): physics, distribution, memorisation and usefulness helpers.

All sinograms are ``(N, V, B)`` arrays of counts, axes (view, radial), with
``V`` views spread evenly over ``[0, pi)`` and ``B`` radial bins centred on
the rotation axis.

Physics
    :func:`helgason_ludwig`: the ``k``-th moment ``m_k(theta) = sum_s s^k
    p(theta, s)`` of a projection of any image is a homogeneous polynomial of
    degree ``k`` in ``cos theta``, ``sin theta`` (Helgason-Ludwig), so its
    Fourier series over ``[0, 2 pi)`` (views past ``pi`` from
    ``p(theta + pi, s) = p(theta, -s)``) holds only the harmonics ``|m| <= k``
    of the parity of ``k``. The metric is the energy outside them over the
    total, per order ``k = 0..K`` (0: consistent; real data miss it by
    attenuation and noise). :func:`negative_mass_fraction`,
    :func:`total_counts`. The non-negative fit residual is
    ``benchmarks.bench_windows.residual``.
Distribution
    Feature spaces that need no downloaded weights: :func:`pet_features`
    (hand-made: radial profile, count histogram, grey-level co-occurrence
    texture from scikit-image) and :class:`SinogramEncoder` (a
    small autoencoder trained on held-out sinograms only). In them
    :func:`frechet_distance` (FID's formula), :func:`sliced_wasserstein`
    (SW2 over random directions) and :func:`precision_recall` (k-NN
    manifolds, Kynkäänniemi et al. 2019); :func:`bootstrap` gives their
    95% intervals by resampling both sets.
Memorisation
    :func:`nearest_distances`: the relative L2 distance of each sample to its
    nearest training slice, to compare with held-out slices' own.
Usefulness
    :func:`low_dose_pairs`: (low dose, full dose) pairs of any sinograms by the
    simulator's binomial thinning (:func:`pet_projection.simulation.thin_counts`).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pet_projection.simulation import thin_counts

__all__ = ["SinogramEncoder", "bootstrap", "frechet_distance", "helgason_ludwig", "low_dose_pairs",
           "moment_inconsistency", "nearest_distances", "negative_mass_fraction", "pet_features", "precision_recall",
           "sliced_wasserstein", "standardise", "total_counts"]


# ------------------------------------------------------------------------------------------------ physics

def moment_inconsistency(sinograms: np.ndarray, max_order: int = 3) -> np.ndarray:
    """Relative energy ``(N, max_order + 1)`` of each moment's harmonics outside the Helgason-Ludwig set.

    ``s`` is the bin centre over the half width (``-1 .. 1``); the moments
    are extended to ``[0, 2 pi)`` with ``m_k(theta + pi) = (-1)^k m_k(theta)``
    (module docstring), so only harmonics of ``k``'s parity are present and the
    metric is the energy of ``|m| > k`` over all.
    """
    data = np.asarray(sinograms, dtype=np.float64)
    n_bins = data.shape[-1]
    s = (np.arange(n_bins) - 0.5 * (n_bins - 1)) / (0.5 * n_bins)
    out = np.empty((len(data), max_order + 1))
    for k in range(max_order + 1):
        moment = data @ s**k  # (N, V)
        spectrum = np.abs(np.fft.fft(np.concatenate([moment, (-1) ** k * moment], axis=1), axis=1)) ** 2
        harmonic = np.abs(np.fft.fftfreq(spectrum.shape[1], 1.0 / spectrum.shape[1]))
        total = spectrum.sum(axis=1)
        out[:, k] = spectrum[:, harmonic > k].sum(axis=1) / np.maximum(total, 1e-300)
    return out


def helgason_ludwig(sinograms: np.ndarray, max_order: int = 3) -> np.ndarray:
    """Per-sample mean over ``k = 0..max_order`` of :func:`moment_inconsistency` ``(N,)``."""
    return moment_inconsistency(sinograms, max_order).mean(axis=1)


def negative_mass_fraction(sinograms: np.ndarray) -> np.ndarray:
    """``sum max(-p, 0) / sum |p|`` per sample ``(N,)`` (0 for non-negative sinograms)."""
    data = np.asarray(sinograms, dtype=np.float64).reshape(len(sinograms), -1)
    return np.clip(-data, 0.0, None).sum(axis=1) / np.maximum(np.abs(data).sum(axis=1), 1e-300)


def total_counts(sinograms: np.ndarray) -> np.ndarray:
    """Sum of each sinogram ``(N,)`` (counts)."""
    return np.asarray(sinograms, dtype=np.float64).reshape(len(sinograms), -1).sum(axis=1)


# ------------------------------------------------------------------------------------------------ features

def pet_features(sinograms: np.ndarray, profile_bins: int = 16, levels: int = 16) -> np.ndarray:
    """Hand-made PET features ``(N, F)`` of sinograms.

    - the mean radial profile, in ``profile_bins`` groups, as fractions of the total;
    - the histogram of counts over the sinogram's mean, 12 bins over ``[0, 6)``
      (fractions of the rays; the rest is above);
    - grey-level co-occurrence texture (:func:`skimage.feature.graycomatrix`,
      ``graycoprops`` contrast, homogeneity, energy, correlation) of the
      sinogram quantised to ``levels`` grey levels of its maximum, at distances
      1 and 3 along the radial and the view axis.

    All are invariant to the count level (a sinogram times 2 has the same
    features): the simulator fixes each slice's total counts, so a count
    feature would have almost no spread in real data and dominate every
    standardised distance; the total counts are scored on their own
    (:func:`total_counts`).
    """
    from skimage.feature import graycomatrix, graycoprops

    rows = []
    for p in np.asarray(sinograms, dtype=np.float64):
        p = np.clip(p, 0.0, None)
        total = max(p.sum(), 1e-12)
        profile = p.sum(axis=0).reshape(profile_bins, -1).sum(axis=1) / total
        histogram = np.histogram(p / max(p.mean(), 1e-12), bins=12, range=(0.0, 6.0))[0] / p.size
        grey = np.minimum((p / max(p.max(), 1e-12) * levels).astype(np.uint8), levels - 1)
        matrix = graycomatrix(grey, [1, 3], [0.0, np.pi / 2], levels=levels, symmetric=True, normed=True)
        texture = [graycoprops(matrix, prop).ravel() for prop in ("contrast", "homogeneity", "energy", "correlation")]
        rows.append(np.concatenate([profile, histogram, *texture]))
    return np.nan_to_num(np.array(rows))


def standardise(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``features`` minus the reference's mean, over its standard deviation (per feature; constant ones kept as is)."""
    std = reference.std(axis=0)
    return (features - reference.mean(axis=0)) / np.where(std > 0, std, 1.0)


class SinogramEncoder(nn.Module):
    """A small convolutional autoencoder of 64 x 64 sinograms; its code ``(N, code_dim)`` is a feature space.

    Trained only on held-out sinograms (never on a generator's training
    slices or samples). Input: ``log1p(counts) / log1p(scale)`` with ``scale``
    the training set's largest count, so both shape and count level matter.
    """

    def __init__(self, code_dim: int = 32, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.encoder = nn.Sequential(nn.Conv2d(1, 16, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(16, 32, 4, 2, 1),
                                     nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
                                     nn.Conv2d(64, 64, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                                     nn.Linear(64 * 16, code_dim))
        self.decoder = nn.Sequential(nn.Linear(code_dim, 64 * 16), nn.Unflatten(1, (64, 4, 4)), nn.ReLU(),
                                     nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
                                     nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                                     nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(16, 1, 4, 2, 1))
        self.register_buffer("log_scale", torch.ones(()))
        self.losses: list[float] = []

    def _input(self, sinograms: np.ndarray) -> torch.Tensor:
        x = torch.as_tensor(np.clip(np.asarray(sinograms, dtype=np.float32), 0.0, None)).unsqueeze(1)
        return torch.log1p(x) / self.log_scale

    def fit(self, sinograms: np.ndarray, steps: int, batch_size: int = 32, lr: float = 1e-3, seed: int = 0,
            progress: bool = False) -> "SinogramEncoder":
        """Train on held-out sinograms ``(N, 64, 64)`` (mean squared reconstruction error, Adam)."""
        from tqdm.auto import tqdm

        self.log_scale.fill_(float(np.log1p(max(float(np.max(sinograms)), 1.0))))
        x = self._input(sinograms)
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        self.train()
        for _ in tqdm(range(steps), desc="feature encoder", unit="step", disable=not progress):
            batch = x[torch.randint(0, len(x), (min(batch_size, len(x)),), generator=generator)]
            loss = F.mse_loss(self.decoder(self.encoder(batch)), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            self.losses.append(float(loss.detach()))
        self.eval()
        return self

    def encode(self, sinograms: np.ndarray) -> np.ndarray:
        """Codes ``(N, code_dim)`` float64."""
        with torch.no_grad():
            return self.encoder(self._input(sinograms)).double().numpy()


# ------------------------------------------------------------------------------------------------ distances

def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` of features ``(N, F)`` and ``(M, F)`` (FID's formula)."""
    from scipy import linalg

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():  # fewer samples than features give singular covariances: sqrtm still holds
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(max(np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2) + np.trace(cov_a + cov_b - 2.0 * root), 0.0))


def _directions(dim: int, n: int, seed: int) -> np.ndarray:
    d = np.random.default_rng(seed).standard_normal((n, dim))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, n_projections: int = 256, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance: root mean over random unit directions of the 1D ``W2^2`` (quantile form)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    directions = _directions(a.shape[1], n_projections, seed)
    levels = (np.arange(max(len(a), len(b))) + 0.5) / max(len(a), len(b))
    qa = np.quantile(a @ directions.T, levels, axis=0, method="inverted_cdf")
    qb = np.quantile(b @ directions.T, levels, axis=0, method="inverted_cdf")
    return float(np.sqrt(np.mean((qa - qb) ** 2)))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(N, M)``."""
    squared = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(squared, 0.0, None))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of features ``(N, F)`` / ``(M, F)``.

    Each set's manifold is the union of balls around its points reaching their
    ``k``-th nearest neighbour in the set; precision is the fraction of fake
    points inside the real manifold, recall the fraction of real points inside
    the fake one.
    """
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)

    def radii(x: np.ndarray) -> np.ndarray:
        return np.sort(_pairwise(x, x), axis=1)[:, min(k, len(x) - 1)]  # column 0 is the point itself

    precision = float((_pairwise(fake, real) <= radii(real)[None, :]).any(axis=1).mean())
    recall = float((_pairwise(real, fake) <= radii(fake)[None, :]).any(axis=1).mean())
    return precision, recall


def bootstrap(metric: Callable[[np.ndarray, np.ndarray], float], a: np.ndarray, b: np.ndarray, n_boot: int = 200,
              seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """``metric(a, b)`` and its percentile ``confidence`` interval over ``n_boot`` resamplings of both sets."""
    rng = np.random.default_rng(seed)
    values = [metric(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))]) for _ in range(n_boot)]
    tail = 50.0 * (1.0 - confidence)
    return {"value": float(metric(a, b)), "low": float(np.percentile(values, tail)),
            "high": float(np.percentile(values, 100.0 - tail))}


# ------------------------------------------------------------------------------------------------ memorisation

def nearest_distances(samples: np.ndarray, training: np.ndarray, relative: bool = True) -> np.ndarray:
    """Distance ``(N,)`` of each sample to its nearest training item, ``min_j ||x_i - t_j|| (/ ||t_j||)``.

    ``samples`` ``(N, ...)`` and ``training`` ``(M, ...)`` are flattened; with
    ``relative`` each distance is over the training item's norm (0: a copy).
    """
    x = np.asarray(samples, dtype=np.float64).reshape(len(samples), -1)
    t = np.asarray(training, dtype=np.float64).reshape(len(training), -1)
    distances = _pairwise(x, t)
    if relative:
        distances = distances / np.maximum(np.linalg.norm(t, axis=1), 1e-300)[None, :]
    return distances.min(axis=1)


# ------------------------------------------------------------------------------------------------ usefulness

def low_dose_pairs(sinograms: np.ndarray, dose_reduction_factor: float, rng: np.random.Generator,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(low-dose, full-dose) pairs ``(N, V, B)`` float32 of sinograms by binomial thinning.

    The full dose is the sinogram rounded to non-negative integer counts
    (generated sinograms are not integers; measured ones are unchanged); the
    low dose keeps each count with probability ``1 / dose_reduction_factor``
    (:func:`pet_projection.simulation.thin_counts`, as the simulator makes
    its low-dose inputs).
    """
    full = np.rint(np.clip(np.nan_to_num(np.asarray(sinograms, dtype=np.float64)), 0.0, None))
    return np.stack([thin_counts(p, dose_reduction_factor, rng) for p in full]), full.astype(np.float32)

