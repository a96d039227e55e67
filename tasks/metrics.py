"""Evaluation metrics: sinogram- and image-domain PSNR / SSIM / NRMSE, lesion-ROI bias and contrast recovery.

PSNR, SSIM and NRMSE are scikit-image's (:mod:`skimage.metrics`) with an
explicit ``data_range``: the range ``max - min`` of the reference, so a metric
never depends on the dtype's range or on the estimate. NRMSE is
``||ref - est||_2 / ||ref||_2`` (scikit-image's ``"euclidean"`` normalisation).

Lesion metrics use the simulator's label maps (regions named ``lesion*`` and
their host organ, :class:`~pet_projection.RegionTable`):

- mean bias of lesion ``l``: ``(mean_l(est) - mean_l(ref)) / mean_l(ref)``;
- contrast recovery (e.g. NEMA NU 2 image-quality phantom, hot spheres):
  ``CR_l = (mean_l(est) / mean_h(est) - 1) / (mean_l(ref) / mean_h(ref) - 1)``
  with ``h`` the host organ minus all lesions; 1 is perfect recovery.

Per image, lesions are averaged; images without lesions give NaN and are left
out of the summaries (:func:`summarise`: mean and the 95% confidence interval
of the mean from Student's t distribution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from pet_projection.attention import LESION_PREFIX

__all__ = ["IMAGE_METRICS", "SINOGRAM_METRICS", "Summary", "image_metrics", "lesion_metrics", "nrmse", "psnr",
           "similarity_metrics", "ssim", "summarise"]

SINOGRAM_METRICS = ("sino_psnr", "sino_ssim", "sino_nrmse")
IMAGE_METRICS = ("psnr", "ssim", "nrmse", "lesion_bias", "lesion_abs_bias", "contrast_recovery")


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise ValueError(f"reference has shape {reference.shape} but estimate has shape {estimate.shape}")
    if reference.ndim != 2:
        raise ValueError(f"metrics take 2D arrays (ny, nx) or (n_views, n_bins), got shape {reference.shape}")
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(estimate))):
        raise ValueError("reference and estimate must be finite")
    data_range = float(reference.max() - reference.min())
    if data_range <= 0.0:
        raise ValueError("the reference is constant: PSNR/SSIM need a reference with a positive data range")
    return reference, estimate, data_range


def psnr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(range^2 / MSE)``, range = reference max - min."""
    from skimage.metrics import peak_signal_noise_ratio

    reference, estimate, data_range = _pair(reference, estimate)
    return float(peak_signal_noise_ratio(reference, estimate, data_range=data_range))


def ssim(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004; scikit-image's 7 x 7 uniform window), range of the reference.

    Arrays smaller than 7 pixels on a side use the largest odd window that fits (at least 3).
    """
    from skimage.metrics import structural_similarity

    reference, estimate, data_range = _pair(reference, estimate)
    window = min(7, *(n if n % 2 else n - 1 for n in reference.shape))
    if window < 3:
        raise ValueError(f"SSIM needs arrays of at least 3 x 3, got {reference.shape}")
    return float(structural_similarity(reference, estimate, data_range=data_range, win_size=window))


def nrmse(reference: np.ndarray, estimate: np.ndarray) -> float:
    """``||ref - est|| / ||ref||`` (Euclidean norms)."""
    from skimage.metrics import normalized_root_mse

    reference, estimate, _ = _pair(reference, estimate)
    return float(normalized_root_mse(reference, estimate, normalization="euclidean"))


def similarity_metrics(reference: np.ndarray, estimate: np.ndarray, prefix: str = "") -> dict[str, float]:
    """``{prefix + "psnr", prefix + "ssim", prefix + "nrmse"}`` of one 2D pair."""
    return {f"{prefix}psnr": psnr(reference, estimate), f"{prefix}ssim": ssim(reference, estimate),
            f"{prefix}nrmse": nrmse(reference, estimate)}


def lesion_metrics(reference: np.ndarray, estimate: np.ndarray, labels: np.ndarray, names: Mapping[str, int],
                   hosts: Mapping[str, str]) -> dict[str, float]:
    """Lesion-ROI mean bias (signed and absolute, fractions) and contrast recovery, averaged over the lesions.

    Parameters
    ----------
    reference, estimate : ndarray ``(ny, nx)``
        Ground truth and estimate in the same units.
    labels : int ndarray ``(ny, nx)``
        Region labels; ``names`` maps region names to labels.
    hosts : mapping of lesion name to host region name
        The background region of each lesion for the contrast (lesions whose
        host is unknown or empty get no contrast recovery).

    Returns
    -------
    dict with ``lesion_bias``, ``lesion_abs_bias``, ``contrast_recovery``;
    NaN when the image has no lesion voxels (or no usable host).
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    labels = np.asarray(labels)
    if not reference.shape == estimate.shape == labels.shape:
        raise ValueError(f"reference {reference.shape}, estimate {estimate.shape} and labels {labels.shape} must "
                         "have one shape")
    lesion_names = [name for name in names if name.startswith(LESION_PREFIX)]
    any_lesion = np.isin(labels, [names[name] for name in lesion_names])
    biases, recoveries = [], []
    for name in lesion_names:
        roi = labels == names[name]
        if not roi.any():
            continue
        true_mean, est_mean = reference[roi].mean(), estimate[roi].mean()
        if true_mean <= 0.0:
            continue
        biases.append((est_mean - true_mean) / true_mean)
        host = hosts.get(name)
        background = (labels == names[host]) & ~any_lesion if host in names else np.zeros_like(roi)
        if background.any():
            true_bg, est_bg = reference[background].mean(), estimate[background].mean()
            true_contrast = true_mean / true_bg - 1.0 if true_bg > 0 else 0.0
            if est_bg > 0 and abs(true_contrast) > 1e-6:
                recoveries.append((est_mean / est_bg - 1.0) / true_contrast)
    nan = float("nan")
    return {"lesion_bias": float(np.mean(biases)) if biases else nan,
            "lesion_abs_bias": float(np.mean(np.abs(biases))) if biases else nan,
            "contrast_recovery": float(np.mean(recoveries)) if recoveries else nan}


def image_metrics(reference: np.ndarray, estimate: np.ndarray, labels: np.ndarray, names: Mapping[str, int],
                  hosts: Mapping[str, str]) -> dict[str, float]:
    """PSNR, SSIM, NRMSE and the lesion metrics of one image (see :func:`lesion_metrics`)."""
    return {**similarity_metrics(reference, estimate), **lesion_metrics(reference, estimate, labels, names, hosts)}


@dataclass(frozen=True)
class Summary:
    """Mean and 95% confidence interval ``[low, high]`` of a metric over ``n`` test samples (NaNs left out)."""

    mean: float
    low: float
    high: float
    n: int

    def format(self, digits: int = 3) -> str:
        """``"mean ± half-width"`` (``"n/a"`` without values; no interval for one value)."""
        if self.n == 0:
            return "n/a"
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {(self.high - self.low) / 2:.{digits}f}"


def summarise(values: Sequence[float], confidence: float = 0.95) -> Summary:
    """Mean and the ``confidence`` interval of the mean (Student's t, ``n - 1`` degrees of freedom)."""
    from scipy import stats

    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    n = int(array.size)
    if n == 0:
        return Summary(math.nan, math.nan, math.nan, 0)
    mean = float(array.mean())
    if n == 1:
        return Summary(mean, mean, mean, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * array.std(ddof=1) / math.sqrt(n))
    return Summary(mean, mean - half, mean + half, n)
