"""PET DICOM series written here with pydicom: round trips in Bq/ml and SUV, bad series, and the CLI paths."""

from __future__ import annotations

import json
import os
import pathlib
import warnings
from typing import Callable, Optional

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pet_projection import ImageGrid
from pet_projection.io import read_dicom_header, read_dicom_series, read_image
from pet_projection.io.formats import file_kind, load_image
from tasks.cli import main

from .hostile import bounded, make_fifo

pydicom = pytest.importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
# F-18: 109.77 min (DDEP / NNDC nuclear data), as DICOM writes it, in s
F18_HALF_LIFE_S = 109.77 * 60.0
WEIGHT_KG = 72.5
DOSE_BQ = 3.7e8
# injection at 09:15:00, scan (series) at 10:15:00: one hour of decay
INJECTION, SCAN = "20240102091500", ("20240102", "101500")
DECAY_S = 3600.0
# a grid with unequal sizes and voxel sizes per axis and an origin off the centre, all exact in binary, so that a
# swapped or flipped axis shows; the first voxel centres are x = -8, y = 7, z = -11.25 mm
GRID = ImageGrid((5, 6, 7), (2.5, 2.0, 1.5), (-6.25, 12.0, -3.5))
# (row cosines, column cosines) of the slices: rows along +x and columns along +y (the usual), both flipped,
# and rows along +y (a transposed slice)
ORIENTATIONS = {"axial": ((1, 0, 0), (0, 1, 0)), "flipped": ((-1, 0, 0), (0, -1, 0)),
                "transposed": ((0, 1, 0), (1, 0, 0))}


def known_image() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored int16 values ``(nz, ny, nx)``, a rescale slope per slice (exact decimals), and the image in Bq/ml."""
    rng = np.random.default_rng(3)
    stored = rng.integers(0, 30000, GRID.shape).astype(np.int16)
    slopes = np.array([float(f"{s:.6g}") for s in rng.uniform(0.05, 2.0, GRID.shape[0])])
    return stored, slopes, stored.astype(np.float64) * slopes[:, None, None]


def pet_slices(stored: np.ndarray, slopes: np.ndarray, grid: ImageGrid = GRID, orientation: str = "axial"
               ) -> list[Dataset]:
    """One PET Image Storage dataset per slice of ``stored`` (this package's ``(z, y, x)`` frame = LPS) on ``grid``."""
    (dz, dy, dx), (row, column) = grid.voxel_size_mm, ORIENTATIONS[orientation]
    z, y, x = (grid.centers_mm(axis) for axis in range(3))
    series, study = generate_uid(), generate_uid()
    datasets = []
    for k in range(grid.shape[0]):
        pixels = stored[k]
        if orientation == "flipped":
            pixels, corner = pixels[::-1, ::-1], (x[-1], y[-1])
        else:
            corner = (x[0], y[0])
        spacing = (dy, dx)
        if orientation == "transposed":  # row index along x, column index along y
            pixels, spacing = pixels.T, (dx, dy)
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = PET_IMAGE_STORAGE
        ds.SOPClassUID = PET_IMAGE_STORAGE
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = "PT", series, study
        ds.SeriesDescription = "test series"
        ds.SeriesDate, ds.SeriesTime = SCAN
        ds.AcquisitionDate, ds.AcquisitionTime = SCAN
        ds.PatientWeight = str(WEIGHT_KG)
        ds.Units, ds.DecayCorrection, ds.CorrectedImage = "BQML", "START", ["DECY", "ATTN"]
        item = Dataset()
        item.RadiopharmaceuticalStartDateTime = INJECTION
        item.RadionuclideTotalDose = str(DOSE_BQ)
        item.RadionuclideHalfLife = str(F18_HALF_LIFE_S)
        ds.RadiopharmaceuticalInformationSequence = Sequence([item])
        ds.ImagePositionPatient = [f"{v:.10g}" for v in (corner[0], corner[1], z[k])]
        ds.ImageOrientationPatient = [str(float(c)) for c in row + column]
        ds.PixelSpacing = [str(s) for s in spacing]
        ds.SliceThickness = str(dz)
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slopes[k]:.6g}", "0"
        ds.PixelData = np.ascontiguousarray(pixels, "<i2").tobytes()
        datasets.append(ds)
    return datasets


def save_series(folder: pathlib.Path, datasets: list[Dataset]) -> pathlib.Path:
    """Write the datasets as DICOM Part 10 files, named in an order unrelated to their slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, ds in zip(np.random.default_rng(5).permutation(len(datasets)), datasets):
        ds.save_as(folder / f"IM{k:04d}.dcm", enforce_file_format=True)
    return folder


def expected_suv(bq_per_ml: np.ndarray) -> np.ndarray:
    """SUVbw = C W / (D 2^(-t/T)) with W in g (QIBA vendor-neutral definition), in float64."""
    return bq_per_ml * (WEIGHT_KG * 1000.0) / (DOSE_BQ * 2.0 ** (-DECAY_S / F18_HALF_LIFE_S))


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
def test_a_series_round_trips_in_bq_per_ml_and_suv(tmp_path: pathlib.Path, orientation: str) -> None:
    stored, slopes, bq = known_image()
    folder = save_series(tmp_path / "series", pet_slices(stored, slopes, orientation=orientation))
    image, grid = read_dicom_series(folder)
    # the geometry exactly; values: stored x slope in float64, then float32
    assert grid == GRID and image.dtype == np.float32
    np.testing.assert_array_equal(image, bq.astype(np.float32))
    suv, suv_grid = read_dicom_series(folder, units="SUV")
    assert suv_grid == GRID and suv.dtype == np.float32
    np.testing.assert_allclose(suv, expected_suv(bq), rtol=np.finfo(np.float32).eps, atol=0)
    # one hour of F-18 decay leaves 2^(-60/109.77) = 0.684633 of the dose: SUV per Bq/ml = 72.5e3 g / 253.31 MBq
    assert read_dicom_header(folder).suv_factor == pytest.approx(72500.0 / (3.7e8 * 0.684633), rel=1e-6)
    assert file_kind(folder) == "dicom"
    np.testing.assert_array_equal(load_image(folder)[0], image)


def test_decay_reference_times(tmp_path: pathlib.Path) -> None:
    stored, slopes, bq = known_image()
    # ADMIN: the images are decay-corrected to the injection, so the dose is not decayed
    datasets = pet_slices(stored, slopes)
    for ds in datasets:
        ds.DecayCorrection = "ADMIN"
    factor = read_dicom_header(save_series(tmp_path / "admin", datasets)).suv_factor
    assert factor == pytest.approx(WEIGHT_KG * 1000.0 / DOSE_BQ, rel=1e-12)
    # a series written again 2 h after the scan: the earliest acquisition time is the reference (QIBA)
    datasets = pet_slices(stored, slopes)
    for ds in datasets:
        ds.SeriesTime = "121500"
    del datasets[0].RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    for ds in datasets:  # a start time alone is taken on the series date
        ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartTime = "091500"
        if "RadiopharmaceuticalStartDateTime" in ds.RadiopharmaceuticalInformationSequence[0]:
            del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    suv, _ = read_dicom_series(save_series(tmp_path / "rewritten", datasets), units="SUV")
    np.testing.assert_allclose(suv, expected_suv(bq), rtol=np.finfo(np.float32).eps, atol=0)


def _without(keyword: str, in_item: bool = False) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        delattr(ds.RadiopharmaceuticalInformationSequence[0] if in_item else ds, keyword)
    return change


def _set(**values: object) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        for keyword, value in values.items():
            setattr(ds, keyword, value)
    return change


@pytest.mark.parametrize("change, message", [
    (_without("RadionuclideTotalDose", in_item=True),
     r"SUV needs the injected dose: RadionuclideTotalDose \(0018,1074\) is missing"),
    (_without("RadiopharmaceuticalInformationSequence"), r"SUV needs the injected dose: "
     r"RadiopharmaceuticalInformationSequence \(0054,0016\) is missing"),
    (_without("RadionuclideHalfLife", in_item=True), r"SUV needs the radionuclide's half-life"),
    (_without("PatientWeight"), r"SUV needs the patient's weight: PatientWeight \(0010,1030\) is missing"),
    (_set(PatientWeight="0"), r"SUV needs the patient's weight: PatientWeight \(0010,1030\) is '0'"),
    (_without("RadiopharmaceuticalStartDateTime", in_item=True), r"SUV needs the injection time"),
    (_set(DecayCorrection="NONE"), r"SUV needs images decay-corrected .* DecayCorrection \(0054,1102\) is 'NONE'"),
    (_set(SeriesTime="081500", AcquisitionTime="081500"), r"the injection .* is after the scan's reference time"),
])
def test_suv_without_its_dose_information_says_what_is_missing(tmp_path: pathlib.Path, change, message: str) -> None:
    stored, slopes, bq = known_image()
    datasets = pet_slices(stored, slopes)
    for ds in datasets:
        change(ds)
    folder = save_series(tmp_path / "series", datasets)
    np.testing.assert_array_equal(read_dicom_series(folder)[0], bq.astype(np.float32))  # Bq/ml needs none of it
    with pytest.raises(ValueError, match=message):
        read_dicom_series(folder, units="SUV")


def _bad_series(tmp_path: pathlib.Path, change: Callable[[list[Dataset]], Optional[list[Dataset]]]) -> pathlib.Path:
    stored, slopes, _ = known_image()
    datasets = pet_slices(stored, slopes)
    return save_series(tmp_path / "series", change(datasets) or datasets)


def _one(k: int, **values: object) -> Callable[[list[Dataset]], None]:
    def change(datasets: list[Dataset]) -> None:
        for keyword, value in values.items():
            setattr(datasets[k], keyword, value)
    return change


def _all(**values: object) -> Callable[[list[Dataset]], None]:
    def change(datasets: list[Dataset]) -> None:
        for ds in datasets:
            _set(**values)(ds)
    return change


def _smaller_slice(datasets: list[Dataset]) -> None:
    ds = datasets[2]
    ds.Rows, ds.Columns, ds.PixelData = 4, 6, np.zeros((4, 6), "<i2").tobytes()


def _moved(k: int, z_mm: float) -> Callable[[list[Dataset]], None]:
    def change(datasets: list[Dataset]) -> None:
        position = [float(v) for v in datasets[k].ImagePositionPatient]
        datasets[k].ImagePositionPatient = [str(position[0]), str(position[1]), str(z_mm)]
    return change


@pytest.mark.parametrize("change, message", [
    (_one(3, SeriesInstanceUID="1.2.3.4"), r"mixes 2 series \(.*1\.2\.3\.4: 1 files.*give a folder holding one series"),
    (lambda datasets: datasets[:2] + datasets[3:], r"1 slice missing: a step of 5\.0000 mm from z = -8\.7500 mm"),
    (lambda datasets: datasets[:1] + datasets[3:], r"2 slices missing: a step of 7\.5000 mm .* smallest step is 2\.5"),
    (_moved(2, -5.75), r"uneven slice spacing: a step of 2\.5000 mm .* where the smallest step is 2\.0000 mm"),
    (_moved(2, -8.75), r"are both at z = -8\.7500 mm: two slices at one position"),
    (_all(Modality="CT"), r"Modality \(0008,0060\) is 'CT', not PET \('PT'\)"),
    (_smaller_slice, r"Rows \(0028,0010\) is 4, but 6 in IM\d{4}\.dcm of the same series"),
    (_one(1, PixelSpacing=["2.0", "1.25"]), r"PixelSpacing \(0028,0030\) is \[2\.0, 1\.25\], but \[2\.0, 1\.5\]"),
    (_all(ImageOrientationPatient=["1", "0", "0", "0", "0.8", "-0.6"]), r"is not an axial slice with rows and columns"),
    (_all(ImageOrientationPatient=["1", "0", "0", "0", "0", "-1"]), r"oblique, sagittal and coronal slices are not"),
    (_one(2, ImagePositionPatient=["-7", "7", "-6.25"]), r"its slice is centred at .* a tilted or sheared stack"),
    (_all(Units="CNTS"), r"Units \(0054,1001\) is 'CNTS', not 'BQML' \(Bq/ml\)"),
    (_all(NumberOfFrames=5), r"a multi-frame file"),
])
def test_bad_series_are_refused_with_one_line_naming_the_problem(tmp_path: pathlib.Path, change, message: str
                                                                 ) -> None:
    folder = _bad_series(tmp_path, change)
    with bounded(), pytest.raises(ValueError, match=message) as raised:
        read_dicom_series(folder)
    assert "\n" not in str(raised.value) and str(folder) in str(raised.value)


def test_a_header_claiming_a_huge_image_is_refused_before_allocating(tmp_path: pathlib.Path) -> None:
    # 65535 x 65535 pixels (4.3e9) announced in files of a few hundred bytes: beyond MAX_ELEMENTS
    folder = _bad_series(tmp_path / "a", _all(Rows=65535, Columns=65535))
    with bounded(), pytest.raises(ValueError, match=r"IM\d{4}\.dcm: Rows x Columns asks for \(65535, 65535\) = "
                                                    r"4294836225 elements, more than"):
        read_dicom_series(folder)
    # 4096 x 4096 pixels of 16 bits (32 MiB a slice): more than the file holds
    folder = _bad_series(tmp_path / "b", _all(Rows=4096, Columns=4096))
    with bounded(), pytest.raises(ValueError, match=r"Rows x Columns asks for \(4096, 4096\) elements of 2 bytes"
                                                    r".* but the file holds"):
        read_dicom_series(folder)
    # pixel data shorter than the header says, the header intact
    folder = _bad_series(tmp_path / "c", _one(0, PixelData=b"\0" * 10))
    with bounded(), pytest.raises(ValueError, match=r"10 bytes of pixel data, but Rows x Columns x Bits Allocated"):
        read_dicom_series(folder)


@pytest.mark.parametrize("keep, message", [
    (200, r"not a readable DICOM file: no data set after the file meta information \(truncated\?\)"),
    (-40, r"44 bytes of pixel data, but Rows x Columns x Bits Allocated is 6 x 7 x 16 bits = 84 bytes"),
])
def test_a_truncated_file_is_named(tmp_path: pathlib.Path, keep: int, message: str) -> None:
    folder = _bad_series(tmp_path, lambda datasets: None)
    victim = sorted(folder.iterdir())[1]
    victim.write_bytes(victim.read_bytes()[:keep])  # in the file meta information, or in the pixel data
    with bounded(), pytest.raises(ValueError, match=f"{victim.name}: {message}"):
        read_dicom_series(folder)


def test_entries_that_are_not_dicom_files_are_skipped_with_a_warning(tmp_path: pathlib.Path) -> None:
    stored, slopes, bq = known_image()
    folder = save_series(tmp_path / "series", pet_slices(stored, slopes))
    (folder / "README.txt").write_text("exported by hand")
    (folder / "subfolder").mkdir()
    make_fifo(folder / "pipe.dcm")  # a FIFO is never opened for reading: it would block
    directory = Dataset()
    directory.file_meta = FileMetaDataset()
    directory.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    directory.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    directory.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    directory.save_as(folder / "DICOMDIR", enforce_file_format=True)
    with bounded(), pytest.warns(UserWarning, match=r"skipped 4 entries .*DICOMDIR: a DICOMDIR index; README\.txt: "
                                                    r"not a DICOM file.*; pipe\.dcm: not a regular file; subfolder: "
                                                    r"a folder"):
        image, grid = read_dicom_series(folder)
    np.testing.assert_array_equal(image, bq.astype(np.float32))
    assert grid == GRID


def test_folders_without_dicom_files_and_single_dicom_files(tmp_path: pathlib.Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty is a folder, not a regular file, and holds no DICOM files"):
        file_kind(tmp_path / "empty")
    with pytest.raises(ValueError, match="empty holds no DICOM files"):
        read_dicom_series(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing does not exist"):
        read_dicom_series(tmp_path / "missing")
    folder = _bad_series(tmp_path, lambda datasets: None)
    one = sorted(folder.iterdir())[0]
    with pytest.raises(ValueError, match=f"{one.name} is one DICOM file: give the folder of its series"):
        file_kind(one)
    with pytest.raises(ValueError, match="is not a folder"):
        read_dicom_series(one)
    with pytest.raises(ValueError, match="units must be one of"):
        read_dicom_series(folder, units="kBq/ml")


def test_a_one_slice_series_takes_its_slice_thickness(tmp_path: pathlib.Path) -> None:
    stored, slopes, bq = known_image()
    folder = save_series(tmp_path / "one", pet_slices(stored, slopes)[2:3])
    image, grid = read_dicom_series(folder)
    assert grid == ImageGrid((1, 6, 7), (2.5, 2.0, 1.5), (GRID.centers_mm(0)[2], 12.0, -3.5))
    np.testing.assert_array_equal(image[0], bq[2].astype(np.float32))


def test_cli_info_and_convert_read_a_series(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
    stored, slopes, bq = known_image()
    folder = save_series(tmp_path / "series", pet_slices(stored, slopes))
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "PET DICOM series, 5 slices, 'test series'" in out and "units          BQML (Bq/ml)" in out
    assert "SUVbw = Bq/ml x 72.5 kg / (370 MBq decayed by 60 min" in out
    assert "grid           (5, 6, 7) voxels (z, y, x) of 2.5 x 2 x 1.5 mm" in out
    assert "centre (z, y, x) (-6.25, 12.0, -3.5) mm" in out
    assert main(["convert", str(folder), str(tmp_path / "a.hv")]) == 0
    image, grid = read_image(tmp_path / "a.hv")
    np.testing.assert_array_equal(image, bq.astype(np.float32))
    assert grid == GRID
    assert main(["convert", str(folder), str(tmp_path / "suv.npz"), "--units", "SUV"]) == 0
    image, grid = load_image(tmp_path / "suv.npz")
    np.testing.assert_allclose(image, expected_suv(bq), rtol=np.finfo(np.float32).eps, atol=0)
    assert grid == GRID
    if pytest.importorskip("nibabel"):
        assert main(["convert", str(folder), str(tmp_path / "a.nii.gz")]) == 0
        image, grid = load_image(tmp_path / "a.nii.gz")
        np.testing.assert_array_equal(image, bq.astype(np.float32))
        assert grid.shape == GRID.shape and grid.voxel_size_mm == GRID.voxel_size_mm
        np.testing.assert_allclose(grid.origin_mm, GRID.origin_mm, atol=1e-5)
    capsys.readouterr()
    # SUV without a dose, and --units on a file that is no DICOM series: one line, exit 2, nothing written
    datasets = pet_slices(stored, slopes)
    for ds in datasets:
        del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose
    no_dose = save_series(tmp_path / "no_dose", datasets)
    assert main(["convert", str(no_dose), str(tmp_path / "x.npz"), "--units", "SUV"]) == 2
    assert "SUV needs the injected dose" in capsys.readouterr().err and not (tmp_path / "x.npz").exists()
    assert main(["info", str(no_dose)]) == 0
    assert "no SUV: " in capsys.readouterr().out
    assert main(["convert", str(tmp_path / "a.hv"), str(tmp_path / "y.npz"), "--units", "SUV"]) == 2
    assert "--units applies to a DICOM series folder" in capsys.readouterr().err


def test_cli_simulates_from_a_dicom_series(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture) -> None:
    from pet_projection.simulation import SimulatedDataset, make_phantom
    from pet_projection.simulation.tracers import get_tracer

    # an FDG brain (procedural phantom) of 12 slices of 4 mm on 2.2 mm pixels, in Bq/ml, as a DICOM series
    grid = ImageGrid((12, 96, 96), (4.0, 2.2, 2.2))
    phantom = make_phantom("brain", grid, np.random.default_rng(8), n_lesions=(0, 0), axial_position_mm=5.0)
    uptake = {name: kinetics.suv for name, kinetics in get_tracer("fdg").uptake.items()}
    activity = phantom.region_image(uptake) * 5000.0  # SUV x 5 kBq/ml
    slopes = activity.max(axis=(1, 2)) / 30000.0
    stored = np.round(activity / slopes[:, None, None]).astype(np.int16)
    folder = save_series(tmp_path / "brain", pet_slices(stored, slopes, grid))
    _, read_grid = read_dicom_series(folder)
    np.savez(tmp_path / "mu.npz", image=phantom.mu_map, voxel_size_mm=np.array(read_grid.voxel_size_mm),
             origin_mm=np.array(read_grid.origin_mm))
    out = tmp_path / "dataset"
    assert main(["simulate", "--task", "low_dose", "--n", "2", "--size", "32", "--views", "24", "--region", "brain",
                 "--activity-image", str(folder), "--mu-map-image", str(tmp_path / "mu.npz"), "--mu-map-unit", "1/mm",
                 "--quiet", "--out", str(out)]) == 0
    assert "region 'brain' given for the image" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["activity_image"] == str(folder.resolve()) and list(manifest["geometry"]) == ["brain"]
    sample = SimulatedDataset(out)[0]
    assert str(folder.resolve()) in sample.metadata["phantom_source"] and sample.metadata["region"] == "brain"
    assert {"skull", "grey_matter", "white_matter"} <= set(sample.names) and sample.input.sum() > 0


@pytest.fixture(scope="module")
def fuzz_slices(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The files of a valid 3-slice series, as bytes."""
    stored, slopes, _ = known_image()
    folder = save_series(tmp_path_factory.mktemp("fuzz") / "valid", pet_slices(stored[:3], slopes[:3],
                                                                                ImageGrid((3, 6, 7), (2.5, 2.0, 1.5))))
    return [path.read_bytes() for path in sorted(folder.iterdir())]


@given(which=st.integers(0, 2), edits=st.lists(st.tuples(st.integers(0, 10 ** 6), st.binary(min_size=1, max_size=8)),
                                                max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 2000)), units=st.sampled_from(["Bq/ml", "SUV"]))
def test_fuzz_damaged_series_give_a_result_or_a_clear_error(fuzz_slices: list[bytes], tmp_path_factory, which: int,
                                                            edits: list[tuple[int, bytes]], cut: Optional[int],
                                                            units: str) -> None:
    # one file of a valid series with random bytes overwritten and perhaps cut, beside a link to /dev/zero and a FIFO
    folder = tmp_path_factory.mktemp("damaged")
    for k, content in enumerate(fuzz_slices):
        if k == which:
            data = bytearray(content)
            for position, replacement in edits:
                position %= len(data)
                data[position:position + len(replacement)] = replacement
            content = bytes(data[:cut] if cut is not None else data)
        (folder / f"IM{k}.dcm").write_bytes(content)
    if os.path.exists("/dev/zero"):
        (folder / "zero.dcm").symlink_to("/dev/zero")
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo.dcm")
    try:
        with bounded(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image, grid = read_dicom_series(folder, units)
    except (ValueError, TypeError, OSError) as error:
        assert str(error) and "\n" not in str(error)
    else:
        assert image.shape == grid.shape and image.dtype == np.float32
