"""``allpet simulate``: write a simulated task dataset (one ``.npz`` per sample + ``manifest.json``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from pet_projection.simulation.acquisition import AcquisitionSettings
from pet_projection.simulation.dataset_folder import SimulatedDataset, write_dataset
from pet_projection.simulation.anatomy import ANATOMIES
from pet_projection.simulation.config import DOSE_REDUCTION_FACTORS, SimulationConfig
from pet_projection.simulation.tracers import TRACERS

from .arguments import TASK_HELP, task_name
from .errors import command


def build_parser() -> argparse.ArgumentParser:
    defaults, physics = SimulationConfig(), AcquisitionSettings()
    parser = argparse.ArgumentParser(
        prog="allpet simulate",
        description="Simulate PET task data (phantoms with lesions, attenuation, normalisation, resolution, "
                    "scatter, randoms, Poisson counts, dose reduction, tracer kinetics). Writes DIR/manifest.json "
                    "and DIR/samples/sample_NNNNN.npz; rerunning the same command resumes.")
    parser.add_argument("--task", required=True, type=task_name, help=TASK_HELP)
    parser.add_argument("--n", type=int, required=True, help="number of samples")
    parser.add_argument("--out", required=True, help="dataset folder (created if needed)")
    parser.add_argument("--dim", type=int, choices=(2, 3), default=defaults.dim,
                        help="2: axial slices, parallel beam; 3: volumes, reduced clinical PET scanner")
    parser.add_argument("--size", type=int, default=defaults.size, help="transaxial pixels (default %(default)s)")
    parser.add_argument("--views", type=int, default=defaults.n_views, help="2D views over 180 degrees")
    parser.add_argument("--slices", type=int, default=defaults.n_slices, help="3D slices of 3.29 mm")
    parser.add_argument("--view-step", type=int, default=defaults.view_step,
                        help="3D: keep every N-th view of the clinical scanner")
    parser.add_argument("--span", type=int, default=defaults.span, help="3D: Michelogram span (odd)")
    parser.add_argument("--max-ring-difference", type=int, default=defaults.max_ring_difference,
                        help="3D: largest ring difference (0: direct planes only)")
    parser.add_argument("--region", "--anatomy", dest="region", choices=ANATOMIES + ("mixed",),
                        default=defaults.anatomy, help="body region (chest and abdomen: parts of the trunk); mixed: "
                        "brain or trunk drawn per sample, or for --activity-image the image's, detected (--anatomy is "
                        "an alias kept for older commands; default %(default)s)")
    parser.add_argument("--counts", type=float, default=None,
                        help="expected prompts of the full-dose / first scan (default 1e6 in 2D, 1e8 in 3D)")
    parser.add_argument("--dose-factors", type=float, nargs="+", default=list(DOSE_REDUCTION_FACTORS),
                        help="low_dose: dose reduction factors drawn per sample (each >= 1)")
    parser.add_argument("--tracer", choices=sorted(TRACERS), default=defaults.tracer,
                        help="fdg, met ([11C]methionine), fdopa ([18F]FDOPA), psma ([68Ga]PSMA-11) (%(default)s)")
    parser.add_argument("--second-tracer", choices=sorted(TRACERS), default=defaults.second_tracer)
    parser.add_argument("--lesions", type=int, nargs=2, default=list(defaults.n_lesions), metavar=("MIN", "MAX"))
    parser.add_argument("--fwhm", type=float, default=physics.fwhm_mm, help="resolution FWHM in mm")
    parser.add_argument("--scatter-fraction", type=float, default=physics.scatter_fraction)
    parser.add_argument("--randoms-fraction", type=float, default=physics.randoms_fraction)
    parser.add_argument("--activity-image", help="image phantom: activity image (.hv, .nii, .npz or a PET DICOM "
                        "folder; any grid and field of view, resampled onto the region's grid) of the first tracer's "
                        "reference frame, e.g. "
                        "STIR-exercises' FDG_g1.hv; needs --mu-map-image")
    parser.add_argument("--mu-map-image", help="image phantom: its mu-map at 511 keV on the same grid")
    parser.add_argument("--mu-map-unit", choices=("1/cm", "1/mm"), default=defaults.mu_map_unit,
                        help="unit of --mu-map-image (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="processes (0 = one per CPU)")
    parser.add_argument("--nifti", action="store_true", help="also write NIfTI images (needs nibabel)")
    parser.add_argument("--compress", action="store_true",
                        help="write compressed .npz files (smaller, slower to write)")
    parser.add_argument("--figures", type=int, default=0, metavar="K",
                        help="write PNG montages of the first K samples to DIR/figures (needs matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@command("simulate")
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``allpet simulate``; returns the exit code (2 for bad parameters)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        physics = AcquisitionSettings(fwhm_mm=args.fwhm, scatter_fraction=args.scatter_fraction,
                                      randoms_fraction=args.randoms_fraction)
        config = SimulationConfig(dim=args.dim, size=args.size, n_views=args.views, n_slices=args.slices,
                                  view_step=args.view_step, span=args.span,
                                  max_ring_difference=args.max_ring_difference, anatomy=args.region,
                                  total_counts=args.counts,
                                  dose_reduction_factors=tuple(args.dose_factors), tracer=args.tracer,
                                  second_tracer=args.second_tracer, n_lesions=tuple(args.lesions),
                                  acquisition=physics,
                                  activity_image=args.activity_image and str(Path(args.activity_image).resolve()),
                                  mu_map_image=args.mu_map_image and str(Path(args.mu_map_image).resolve()),
                                  mu_map_unit=args.mu_map_unit)
        if args.figures < 0:
            raise ValueError(f"--figures must be non-negative, got {args.figures}")
        if config.image_region is not None:
            print(f"allpet simulate: {config.image_region[1]}")
        start = time.perf_counter()
        summary = write_dataset(args.out, args.task, args.n, config, seed=args.seed, workers=args.workers,
                                nifti=args.nifti, compress=args.compress, progress=not args.quiet)
    except (TypeError, ValueError, OSError) as error:
        print(f"allpet simulate: error: {error}", file=sys.stderr)
        return 2
    print(f"{summary.root}: {summary.n_written} samples written ({summary.n_rebuilt} of them rebuilt: their files "
          f"did not match the manifest), {summary.n_skipped} already there ({time.perf_counter() - start:.1f} s)")
    if args.figures:
        from pet_projection.simulation.figures import save_sample_montage

        dataset = SimulatedDataset(args.out)
        for index in range(min(args.figures, len(dataset))):
            path = save_sample_montage(dataset[index], summary.root / "figures" / f"sample_{index:05d}.png")
            print(f"figure: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
