"""Conformance with STIR on its own files: sensitivity image, OSEM of STIR projection data, mMR listmode.

Three jobs on the third-party files in ``shared/data/third_party`` (read in
place; see its README for provenance):

1. **Sensitivity.** The scanner of ``Utahscat600k_ca_seg4.hs`` (STIR's PRT-1:
   16 rings x 384 detectors, arc-corrected, 96 views x 128 bins), ones over
   segments -3..3 back projected onto the 60 x 60 x 31 grid of
   ``RPTsens_seg3_PM.hv`` and compared with that image, STIR's own
   sensitivity (``OSMAPOSL_test_PM_for_sensitivity.par``: ray-tracing matrix,
   2 tangential rays per bin, first and last planes of segment 0 zeroed,
   restricted to the cylindrical field of view). Two models are compared:
   *Joseph*, this package's projector with one LOR per bin; and *Joseph, STIR's
   rays*, the same projector traced along the rays STIR's matrix traces for a
   bin (2 tangential offsets of +-1/4 bin and, for span-1 segments, 2 axial
   offsets of +-1/4 ring spacing, each weighted 1/4, cut to the FOV cylinder).
2. **OSEM of STIR projection data.** ``stir_recon_demo/smalllong.s`` on the grid of ``init.hv``.
3. **mMR listmode.** ``small_listmode_file.l`` histogrammed into
   ``Siemens_mMR_seg2.hs``'s layout and reconstructed with OSEM, with the
   delayeds (averaged over views) as the randoms estimate.

Usage::

    python -m benchmarks.conformance_stir            # writes benchmarks/results/stir_conformance.json and .png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pet_projection import LORProjector, PETSinogramProjector, PETSystemModel, osem
from pet_projection.grid import ImageGrid
from pet_projection.io import read_image, read_projdata, read_projdata_header
from pet_projection.io.petlink import read_listmode
from pet_projection.io.third_party import third_party_folder
from pet_projection.projdata import ProjDataLayout

RESULTS = Path(__file__).resolve().parent / "results"


def _data() -> Path:
    folder = third_party_folder()
    if folder is None:
        raise FileNotFoundError("the third-party STIR files were not found: set ALLPET_THIRD_PARTY_DATA to the "
                                "folder holding stir_recon_test_pack/, stir_recon_demo/, stir_exercises_thorax/")
    return folder


def segment_planes(layout: ProjDataLayout, max_segment: int) -> np.ndarray:
    """Indices of the planes whose STIR segment number lies in ``-max_segment .. max_segment``."""
    numbers = np.array(layout.segment_numbers())[layout.plane_segments()]
    return np.flatnonzero(np.abs(numbers) <= max_segment)


def sensitivity_weights(layout: ProjDataLayout, max_segment: int, zero_end_planes: bool) -> np.ndarray:
    """Ones over the planes of segments ``-max_segment .. max_segment`` (STIR order), with the first and last plane
    of segment 0 zeroed if asked (STIR's ``zero end planes of segment 0``)."""
    weights = np.zeros(layout.shape)
    weights[segment_planes(layout, max_segment)] = 1.0
    if zero_end_planes:
        zero = layout.segment_numbers().index(0)
        first = int(np.sum(layout.n_axial[:zero]))
        weights[[first, first + layout.n_axial[zero] - 1]] = 0.0
    return weights


def stir_ray_endpoints(layout: ProjDataLayout, fov_radius_mm: float, s_shift_mm: float,
                       z_shift_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One of the rays STIR's ray-tracing matrix traces per bin, cut to the FOV cylinder.

    The LOR of every bin moved by ``s_shift_mm`` tangentially and by
    ``z_shift_mm`` (per plane) axially, with its ends where it leaves the
    cylinder of radius ``fov_radius_mm`` (STIR's ``restrict to cylindrical
    FOV``). Returns ``(xstart, xend, inside)`` of shape ``layout.shape + (3,)``
    and ``layout.shape``; ``inside`` is False where the ray misses the FOV.
    """
    phi = layout.view_angles_rad()[None, :, None]
    s = layout.tangential_positions_mm()[None, None, :] + s_shift_mm
    z = layout.plane_endpoints_z_mm() + z_shift_mm[:, None]
    m, half_rise = z.mean(axis=1)[:, None, None], (z[:, 1] - z[:, 0])[:, None, None] / 2.0
    radius = layout.scanner.effective_radius_mm
    tan_theta = half_rise / np.sqrt(radius ** 2 - s ** 2)  # STIR: delta ring_spacing / (2 sqrt(R^2 - s^2))
    inside = np.broadcast_to(np.abs(s) < fov_radius_mm, layout.shape)
    a = np.sqrt(np.clip(fov_radius_mm ** 2 - s ** 2, 0.0, None))
    ends = []
    for sign in (1.0, -1.0):  # STIR's parametrisation: X = s cos + a sin, Y = s sin - a cos, Z = m - a tan(theta)
        point = [s * np.cos(phi) + sign * a * np.sin(phi), s * np.sin(phi) - sign * a * np.cos(phi),
                 m - sign * a * tan_theta]
        ends.append(np.stack(np.broadcast_arrays(*point), axis=-1))
    return ends[0], ends[1], inside


def sensitivity_images(layout: ProjDataLayout, grid: ImageGrid, max_segment: int = 3,
                       zero_end_planes: bool = True) -> dict[str, np.ndarray]:
    """Back projections of ones: ``joseph`` (one LOR per bin) and ``joseph_stir_rays`` (see the module notes),
    in STIR's units (path length / x voxel size, averaged over a bin's rays)."""
    weights = sensitivity_weights(layout, max_segment, zero_end_planes)
    images = {"joseph": PETSinogramProjector(layout, grid).adjoint(weights) / grid.voxel_size_mm[2]}
    nx = grid.shape[2]
    fov_radius = (nx - 1) // 2 * grid.voxel_size_mm[2]  # STIR: min(max x index, -min x index) * voxel size
    bin_spacing = np.diff(layout.tangential_positions_mm()).mean()
    # STIR traces ceil(axial sampling / voxel z - 1e-3) rays per axial position, 1/4 ring spacing either side of
    # the centre: 2 for span-1 segments (sampling = ring spacing) on a half-ring-spacing grid, 1 for spanned ones
    two_axial = np.array([low == high for low, high in layout.segments])[layout.plane_segments()]
    total = np.zeros(grid.shape)
    for s_shift in (-bin_spacing / 4.0, bin_spacing / 4.0):
        for k in (0, 1):
            z_shift = np.where(two_axial, (k - 0.5) * layout.scanner.ring_spacing_mm / 2.0, 0.0)
            weight = np.where(two_axial, 0.25, 0.5 if k == 0 else 0.0)[:, None, None] * weights
            xstart, xend, inside = stir_ray_endpoints(layout, fov_radius, s_shift, z_shift)
            keep = (weight > 0) & inside
            total += LORProjector(grid, xstart[keep], xend[keep]).adjoint(weight[keep])
    images["joseph_stir_rays"] = total / grid.voxel_size_mm[2]
    images["fov_radius_mm"] = np.array(fov_radius)
    return images


def compare_sensitivity(reference: np.ndarray, images: dict[str, np.ndarray], grid: ImageGrid,
                        fov_radius_mm: float) -> dict[str, dict[str, float]]:
    """Relative L2 (after scaling each image to the reference's mean in the FOV), absolute ratio of means, and the
    worst normalised profile differences, inside the cylinder one voxel within ``fov_radius_mm``."""
    x, y, _ = grid.meshgrid_mm()
    mask = np.broadcast_to(np.hypot(x, y) <= fov_radius_mm - grid.voxel_size_mm[2], grid.shape)
    out = {}
    for name, image in images.items():
        if image.shape != grid.shape:
            continue
        scale = reference[mask].mean() / image[mask].mean()
        difference = scale * image[mask] - reference[mask]
        axial = (scale * image * mask).sum(axis=(1, 2)), (reference * mask).sum(axis=(1, 2))
        centre = grid.shape[0] // 2
        radial = scale * image[centre, grid.shape[1] // 2], reference[centre, grid.shape[1] // 2]
        inner = np.abs(grid.centers_mm(2)) <= fov_radius_mm - grid.voxel_size_mm[2]
        out[name] = {
            "relative_l2": float(np.linalg.norm(difference) / np.linalg.norm(reference[mask])),
            "absolute_ratio": float(1.0 / scale),
            "axial_profile_max_relative_difference": float(np.max(np.abs(axial[0] - axial[1])) / axial[1].max()),
            "central_row_max_relative_difference": float(np.max(np.abs(radial[0] - radial[1])[inner]) /
                                                         radial[1].max()),
        }
    return out


def reconstruct_smalllong(n_subsets: int = 8, n_iterations: int = 3) -> dict[str, np.ndarray]:
    """OSEM of STIR's ``smalllong.s`` on ``init.hv``'s grid (negative values from STIR's arc correction set to 0)."""
    data, layout = read_projdata(_data() / "stir_recon_demo" / "smalllong.hs")
    _, grid = read_image(_data() / "stir_recon_demo" / "init.hv")
    system = PETSystemModel(PETSinogramProjector(layout, grid))
    counts = np.maximum(data, 0.0).astype(np.float64)
    image = osem(counts, system, n_subsets, n_iterations)
    fit = system.expected(image)
    return {"image": image, "data": data, "fit": fit,
            "relative_residual": np.array(np.linalg.norm(fit - counts) / np.linalg.norm(counts))}


def randoms_from_delayeds(delayeds: np.ndarray, view_axis: int) -> np.ndarray:
    """A smooth randoms estimate: the delayed coincidences averaged over views (randoms vary slowly with view)."""
    return np.broadcast_to(delayeds.mean(axis=view_axis, keepdims=True), delayeds.shape).copy()


def reconstruct_listmode(grid: Optional[ImageGrid] = None, n_subsets: int = 12, n_iterations: int = 2,
                         time_window_ms: Optional[tuple[float, float]] = None) -> dict[str, np.ndarray]:
    """Histogram the mMR listmode into ``Siemens_mMR_seg2.hs``'s layout and reconstruct with OSEM.

    Default grid: 64 x 108 x 108 voxels of 4.0625 (one ring spacing) x 5.56 x 5.56 mm (600 mm transaxially).
    """
    folder = _data() / "stir_recon_test_pack"
    listmode = read_listmode(folder / "PET_ACQ_small.l.hdr.STIR")
    template = read_projdata_header(folder / "Siemens_mMR_seg2.hs")
    prompts = listmode.histogram(template, prompts=True, time_window_ms=time_window_ms)
    delayeds = listmode.histogram(template, prompts=False, time_window_ms=time_window_ms)
    if grid is None:
        grid = ImageGrid((64, 108, 108), (template.scanner.ring_spacing_mm, 600.0 / 108, 600.0 / 108))
    randoms = randoms_from_delayeds(delayeds, template.axis_order.index("view"))
    system = PETSystemModel(PETSinogramProjector(template, grid), background=randoms)
    image = osem(prompts.astype(np.float64), system, n_subsets, n_iterations)
    return {"image": image, "prompts": prompts, "delayeds": delayeds, "grid_shape": np.array(grid.shape)}


def figure(path: Path, sensitivity: dict, reference: np.ndarray, smalllong: dict, listmode: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(17, 8))
    centre = reference.shape[0] // 2
    panels = [(reference[centre], "STIR sensitivity (RPTsens_seg3_PM), central plane"),
              (sensitivity["joseph_stir_rays"][centre], "allpet, STIR's rays, central plane")]
    for ax, (image, title) in zip(axes[0, :2], panels):
        ax.imshow(image, cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    scale = {name: reference.mean() / sensitivity[name].mean() for name in ("joseph", "joseph_stir_rays")}
    ax = axes[0, 2]
    ax.plot(reference.sum(axis=(1, 2)), "k-", label="STIR")
    for name, style in (("joseph", "C0--"), ("joseph_stir_rays", "C1:")):
        ax.plot(scale[name] * sensitivity[name].sum(axis=(1, 2)), style, label=f"allpet {name}")
    ax.set_title("axial profile (sum per plane)", fontsize=9)
    ax.set_xlabel("plane")
    ax.legend(fontsize=8)
    ax = axes[0, 3]
    row = reference.shape[1] // 2
    ax.plot(reference[centre, row], "k-", label="STIR")
    for name, style in (("joseph", "C0--"), ("joseph_stir_rays", "C1:")):
        ax.plot(scale[name] * sensitivity[name][centre, row], style, label=f"allpet {name}")
    ax.set_title("central row, central plane", fontsize=9)
    ax.set_xlabel("x index")
    ax.legend(fontsize=8)
    image = smalllong["image"]
    axes[1, 0].imshow(image[image.shape[0] // 2], cmap="gray")
    axes[1, 0].set_title("OSEM of STIR smalllong.s, central plane", fontsize=9)
    axes[1, 1].imshow(image[:, image.shape[1] // 2 + 4], cmap="gray", aspect="auto")
    axes[1, 1].set_title("... coronal slice", fontsize=9)
    lm = listmode["image"]
    axes[1, 2].imshow(lm.sum(axis=0), cmap="gray")
    axes[1, 2].set_title("mMR listmode (seg -2..2) OSEM, summed over z", fontsize=9)
    axes[1, 3].imshow(lm.sum(axis=1), cmap="gray", aspect="auto")
    axes[1, 3].set_title("... summed over y", fontsize=9)
    for ax in axes[1]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for stir_conformance.json / .png")
    args = parser.parse_args(argv)
    timings = {}
    start = time.perf_counter()
    reference, grid = read_image(_data() / "stir_recon_test_pack" / "RPTsens_seg3_PM.hv")
    layout = read_projdata_header(_data() / "stir_recon_test_pack" / "Utahscat600k_ca_seg4.hs")
    sensitivity = sensitivity_images(layout, grid)
    fov = float(sensitivity["fov_radius_mm"])
    scores = compare_sensitivity(reference, sensitivity, grid, fov)
    timings["sensitivity_s"] = time.perf_counter() - start
    start = time.perf_counter()
    smalllong = reconstruct_smalllong()
    timings["smalllong_osem_s"] = time.perf_counter() - start
    start = time.perf_counter()
    listmode = reconstruct_listmode()
    timings["listmode_histogram_and_osem_s"] = time.perf_counter() - start
    counts = read_listmode(_data() / "stir_recon_test_pack" / "PET_ACQ_small.l.hdr.STIR").counts()
    result = {
        "sensitivity": {"fov_radius_mm": fov, "scores": scores,
                        "note": "relative L2 inside the FOV cylinder (one voxel in) after scaling to STIR's mean"},
        "smalllong": {"relative_residual_of_fit": float(smalllong["relative_residual"]),
                      "osem": "8 subsets x 3 iterations"},
        "listmode": {"prompts": counts.prompts, "delayeds": counts.delayeds, "time_tags": counts.time_tags,
                     "other_tags": counts.other_tags,
                     "prompts_in_seg2_template": float(listmode["prompts"].sum()),
                     "delayeds_in_seg2_template": float(listmode["delayeds"].sum()),
                     "grid_shape": listmode["grid_shape"].tolist(), "osem": "12 subsets x 2 iterations"},
        "timings_s": timings,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stir_conformance.json").write_text(json.dumps(result, indent=1))
    figure(args.out / "stir_conformance.png", sensitivity, reference, smalllong, listmode)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
