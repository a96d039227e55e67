"""STIR Interfile images and projection data: every shipped header, bit-exact round trips, bad files."""

from __future__ import annotations

import dataclasses
import math
import pathlib
import re
import shutil
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pet_projection import ImageGrid
from pet_projection.io import (InterfileError, read_header, read_image, read_projdata, read_projdata_header,
                               write_image, write_projdata)
from pet_projection.projdata import CylindricalScanner, ProjDataLayout

from .hostile import bounded, make_fifo

# Expected layouts of the shipped projection-data headers: shape (planes, views, tangential), arc correction and
# effective ring radius (mm). Radii: header 'Inner ring diameter' / 2 + 'Average depth of interaction'; for the
# Utah file (no scanner block) STIR's PRT-1 (Scanner.cxx: 373 mm + 7 mm).
PROJDATA_HEADERS = {
    "stir_recon_test_pack/Siemens_mMR_seg2.hs": ((314, 252, 344), False, 335.0),
    "stir_recon_test_pack/Utahscat600k_ca_seg4.hs": ((124, 96, 128), True, 380.0),
    "stir_recon_test_pack/scatter_cylinder.hs": ((8, 32, 35), False, 451.5),
    "stir_recon_demo/smalllong.hs": ((27, 64, 75), True, 307.0),
    "stir_exercises_thorax/template_sinogram.hs": ((15, 64, 192), False, 517.0),
}
# image headers: shape (z, y, x) and voxel sizes (mm) as written in them
IMAGE_HEADERS = {
    "stir_recon_test_pack/RPTsens_seg3_PM.hv": ((31, 60, 60), (3.375, 4.44114, 4.44114)),
    "stir_recon_demo/init.hv": ((31, 60, 60), (3.27, 4.44114, 4.44114)),
    "stir_exercises_thorax/FDG_g1.hv": ((15, 155, 155), (6.75, 3.129, 3.129)),
    "stir_exercises_thorax/CTAC_g1.hv": ((15, 155, 155), (6.75, 3.129, 3.129)),
}


def test_every_shipped_header_parses(third_party: pathlib.Path) -> None:
    headers = sorted(p for p in third_party.rglob("*") if p.suffix in (".hs", ".hv") or ".hdr" in p.name)
    assert len(headers) == 10
    for path in headers:
        header = read_header(path)
        assert "interfile" in header
    assert read_header(third_party / "stir_recon_test_pack/PET_ACQ_small.l.hdr.STIR").integer(
        "number of projections") == 344  # '%number of projections' (the '%' of vendor keys is dropped)


@pytest.mark.parametrize("name", sorted(PROJDATA_HEADERS))
def test_projection_data_headers_give_stir_layouts(third_party: pathlib.Path, name: str) -> None:
    shape, arc_corrected, radius = PROJDATA_HEADERS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every key of the shipped headers is understood
        layout = read_projdata_header(third_party / name)
    assert layout.shape == shape
    assert layout.arc_corrected == arc_corrected
    assert layout.scanner.effective_radius_mm == pytest.approx(radius)


def test_utah_header_takes_the_scanner_from_stir_and_keeps_the_first_view_vertical(third_party) -> None:
    layout = read_projdata_header(third_party / "stir_recon_test_pack/Utahscat600k_ca_seg4.hs")
    assert layout.scanner.name == "PRT-1"
    assert layout.bin_size_mm == pytest.approx(3.1088)  # STIR's PRT-1 default bin size
    assert layout.view_mashing == 2  # 384 / 2 / 96
    # the header's view offset (-0.46875 deg) cancels the half-view shift of mashing by 2 (the header's comment)
    assert layout.view_angles_rad()[0] == pytest.approx(0.0, abs=1e-12)
    assert layout.segment_numbers() == (-4, -3, -2, -1, 0, 1, 2, 3, 4)


@pytest.mark.parametrize("name", sorted(IMAGE_HEADERS))
def test_image_headers(third_party: pathlib.Path, name: str) -> None:
    shape, voxel = IMAGE_HEADERS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image, grid = read_image(third_party / name)
    assert image.shape == grid.shape == shape and image.dtype == np.float32
    np.testing.assert_allclose(grid.voxel_size_mm, voxel)


def test_image_placement_follows_stir(third_party: pathlib.Path) -> None:
    # no 'first pixel offset': STIR's x index runs from -(n // 2) with index 0 at x = 0
    _, grid = read_image(third_party / "stir_recon_demo/init.hv")
    assert grid.centers_mm(2)[30] == pytest.approx(0.0, abs=1e-9)
    assert grid.origin_mm[0] == 0.0  # centred axially on the scanner
    # 'first pixel offset (mm) [1] := -240.933' = -77 x 3.129: the first of 155 voxels, so the grid is centred
    _, grid = read_image(third_party / "stir_exercises_thorax/FDG_g1.hv")
    assert grid.centers_mm(2)[0] == pytest.approx(-240.933)
    np.testing.assert_allclose(grid.origin_mm, 0.0, atol=1e-9)


@pytest.mark.parametrize("name", ["stir_recon_demo/smalllong.hs", "stir_recon_test_pack/scatter_cylinder.hs"])
def test_projection_data_round_trip_is_bit_exact(third_party: pathlib.Path, tmp_path: pathlib.Path,
                                                 name: str) -> None:
    data, layout = read_projdata(third_party / name)
    written = write_projdata(tmp_path / "copy.hs", data, layout)
    original = (third_party / name).with_suffix(".s").read_bytes()
    assert (tmp_path / "copy.s").read_bytes() == original  # same storage order, float32 little-endian
    again, layout_again = read_projdata(written)
    assert again.tobytes() == data.tobytes()
    assert repr(layout_again) == repr(layout)
    np.testing.assert_array_equal(layout_again.transaxial_endpoints_mm(), layout.transaxial_endpoints_mm())
    np.testing.assert_array_equal(layout_again.plane_endpoints_z_mm(), layout.plane_endpoints_z_mm())
    assert layout_again.scanner == layout.scanner


@pytest.mark.parametrize("name", ["stir_recon_demo/init.hv", "stir_exercises_thorax/FDG_g1.hv"])
def test_image_round_trip_is_bit_exact(third_party: pathlib.Path, tmp_path: pathlib.Path, name: str) -> None:
    image, grid = read_image(third_party / name)
    write_image(tmp_path / "copy.hv", image, grid)
    assert (tmp_path / "copy.v").read_bytes() == (third_party / name).with_suffix(".v").read_bytes()
    again, grid_again = read_image(tmp_path / "copy.hv")
    assert again.tobytes() == image.tobytes()
    assert grid_again == grid


def _small_layout(storage_order: str) -> ProjDataLayout:
    scanner = CylindricalScanner("test", 4, 16, 50.0, 5.0, 4.0, 3.0)
    return ProjDataLayout(scanner, [(0, 0), (-1, -1), (1, 1)], [4, 3, 3], 8, 7, False, storage_order=storage_order)


def test_segment_view_axial_storage_order_is_per_segment(tmp_path: pathlib.Path) -> None:
    layout = _small_layout("Segment_View_AxialPos_TangPos")
    plane, view, radial = np.meshgrid(*(np.arange(n) for n in layout.shape), indexing="ij")
    data = (plane * 10000 + view * 100 + radial).astype(np.float32)
    write_projdata(tmp_path / "svat.hs", data, layout)
    raw = np.fromfile(tmp_path / "svat.s", dtype="<f4")
    # segment 1 (ring difference -1, planes 4..6) starts after segment 0's 4 x 8 x 7 values; within it
    # the order is (view, axial, tangential): value of (plane 5, view 2, radial 3)
    assert raw[4 * 8 * 7 + (2 * 3 + 1) * 7 + 3] == 50203
    again, _ = read_projdata(tmp_path / "svat.hs")
    np.testing.assert_array_equal(again, data)
    header = read_header(tmp_path / "svat.hs")
    assert header.lowercase("matrix axis label [3]") == "view"


def test_writer_accepts_other_axis_orders_and_rejects_wrong_shapes(tmp_path: pathlib.Path) -> None:
    layout = _small_layout("Segment_AxialPos_View_TangPos")
    data = np.random.default_rng(1).random(layout.shape).astype(np.float32)
    radial_first = ProjDataLayout(layout.scanner, layout.segments, layout.n_axial, 8, 7, False,
                                  axis_order=("radial", "view", "plane"))
    write_projdata(tmp_path / "rvp.hs", np.ascontiguousarray(data.transpose(2, 1, 0)), radial_first)
    again, _ = read_projdata(tmp_path / "rvp.hs")
    np.testing.assert_array_equal(again, data)
    with pytest.raises(ValueError, match=r"data has shape \(7, 8, 10\), but the layout has shape \(10, 8, 7\)"):
        write_projdata(tmp_path / "bad.hs", data.transpose(2, 1, 0), layout)
    assert not (tmp_path / "bad.hs").exists() and not (tmp_path / "bad.s").exists()
    with pytest.raises(ValueError, match="grid must be a 3D ImageGrid"):
        write_image(tmp_path / "bad.hv", np.zeros((4, 4)), ImageGrid((4, 4)))


def test_a_failed_write_leaves_no_file(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    layout = _small_layout("Segment_AxialPos_View_TangPos")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pathlib.Path, "write_text", fail)  # the header is written after the data file
    with pytest.raises(OSError, match="disk full"):
        write_projdata(tmp_path / "out.hs", np.zeros(layout.shape, np.float32), layout)
    assert list(tmp_path.iterdir()) == []


def _write_header(folder: pathlib.Path, lines: list[str], data: bytes | None = None, name: str = "x") -> pathlib.Path:
    header = folder / f"{name}.hs"
    header.write_text("\n".join(lines) + "\n")
    if data is not None:
        (folder / f"{name}.s").write_bytes(data)
    return header


def _projdata_lines(**changes: str) -> list[str]:
    keys = {
        "name of data file": "x.s", "!PET data type": "Emission", "!number format": "float",
        "!number of bytes per pixel": "4", "imagedata byte order": "LITTLEENDIAN", "number of dimensions": "4",
        "matrix axis label [4]": "segment", "!matrix size [4]": "1", "matrix axis label [3]": "view",
        "!matrix size [3]": "4", "matrix axis label [2]": "axial coordinate", "!matrix size [2]": "{2}",
        "matrix axis label [1]": "tangential coordinate", "!matrix size [1]": "3",
        "minimum ring difference per segment": "{0}", "maximum ring difference per segment": "{0}",
        "applied corrections": "{None}", "Number of rings": "2", "Number of detectors per ring": "8",
        "Inner ring diameter (cm)": "10", "Average depth of interaction (cm)": "0",
        "Distance between rings (cm)": "0.5", "Default bin size (cm)": "0.3",
    }
    keys.update(changes)
    return ["!INTERFILE :="] + [f"{key} := {value}" for key, value in keys.items() if value is not None] + [
        "!END OF INTERFILE :="]


def test_a_hand_written_header_reads_big_endian_integers_with_offset_and_scale(tmp_path: pathlib.Path) -> None:
    values = np.arange(24, dtype=">i2").reshape(2, 4, 3)  # (axial, view, tangential) blocks of one segment
    lines = _projdata_lines(**{"!number format": "signed integer", "!number of bytes per pixel": "2",
                               "imagedata byte order": "BIGENDIAN", "data offset in bytes[1]": "6",
                               "image scaling factor[1]": "0.5"})
    path = _write_header(tmp_path, lines, b"\0" * 6 + values.transpose(1, 0, 2).tobytes())
    data, layout = read_projdata(path)
    assert layout.shape == (2, 4, 3) and layout.storage_order == "Segment_View_AxialPos_TangPos"
    np.testing.assert_array_equal(data, values.astype(np.float32) * 0.5)


@pytest.mark.parametrize("changes, message", [
    ({"!number format": "bit"}, "unsupported 'number format := bit'"),
    ({"number of dimensions": "5"}, "'number of dimensions := 5' is not supported"),
    ({"matrix axis label [1]": "view"}, "unsupported 'matrix axis label' order"),
    ({"!matrix size [2]": "{2, 2}"}, "'matrix size \\[4\\] := 1' segments, but 2 axial sizes"),
    ({"Number of rings": None}, "the key 'number of rings' is missing and STIR knows no scanner"),
    ({"number of time frames": "2"}, "'number of time frames := 2' is not supported"),
    ({"!PET data type": "Image"}, "'PET data type := image' is not projection data"),
    ({"!matrix size [1]": "three"}, "'matrix size \\[1\\] := three' must be an integer"),
    ({"imagedata byte order": "MIDDLEENDIAN"}, "unsupported 'imagedata byte order := middleendian'"),
    ({"minimum ring difference per segment": "{2}", "maximum ring difference per segment": "{2}"},
     "segment ring differences \\(2, 2\\) must"),
])
def test_malformed_headers_name_the_key(tmp_path: pathlib.Path, changes: dict, message: str) -> None:
    path = _write_header(tmp_path, _projdata_lines(**changes), bytes(96))
    with pytest.raises(InterfileError, match=message):
        read_projdata(path)


def test_not_an_interfile_or_a_line_without_assignment(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InterfileError, match="must start with '!INTERFILE :='"):
        read_header(_write_header(tmp_path, ["name of data file := x.s"]))
    lines = _projdata_lines()
    lines.insert(3, "this line has no assignment")
    with pytest.raises(InterfileError, match="line 4: expected 'key := value'"):
        read_header(_write_header(tmp_path, lines))
    with pytest.raises(InterfileError, match="cannot read the Interfile header"):
        read_header(tmp_path / "missing.hs")


def test_truncated_data_files_are_detected(tmp_path: pathlib.Path, third_party: pathlib.Path) -> None:
    with pytest.raises(InterfileError, match="is truncated: .* need 96 bytes, the file has 95"):
        read_projdata(_write_header(tmp_path, _projdata_lines(), bytes(95)))
    shutil.copy(third_party / "stir_recon_demo/smalllong.hs", tmp_path / "smalllong.hs")
    (tmp_path / "smalllong.s").write_bytes((third_party / "stir_recon_demo/smalllong.s").read_bytes()[:-4])
    with pytest.raises(InterfileError, match="smalllong.s is truncated"):
        read_projdata(tmp_path / "smalllong.hs")
    with pytest.raises(InterfileError, match="cannot open the data file"):
        read_projdata(_write_header(tmp_path, _projdata_lines(**{"name of data file": "nowhere.s"}), name="y"))


def test_unknown_keys_are_named_in_a_warning(tmp_path: pathlib.Path) -> None:
    path = _write_header(tmp_path, _projdata_lines(**{"frobnication level": "3"}), bytes(96))
    with pytest.warns(UserWarning, match="'frobnication level'"):
        read_projdata(path)


def test_written_headers_hold_the_scanner_block_stir_reads(tmp_path: pathlib.Path, third_party) -> None:
    _, layout = read_projdata(third_party / "stir_recon_test_pack/scatter_cylinder.hs")
    write_projdata(tmp_path / "c.hs", np.zeros(layout.shape, np.float32), layout)
    header = read_header(tmp_path / "c.hs")
    assert header.number("inner ring diameter (cm)") == 88.62
    assert header.number("average depth of interaction (cm)") == 0.84
    assert header.text("number of crystals per block in axial direction") == "4"
    assert header.number("effective central bin size (cm)") == pytest.approx(451.5 * math.sin(math.pi / 64) / 10)


@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
@settings(max_examples=60)
def test_any_text_parses_or_gives_an_interfile_error(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "x.hs"
    path.write_text("!INTERFILE :=\n" + text, encoding="utf-8", errors="replace")
    try:
        header = read_header(path)
    except InterfileError:
        return
    try:
        read_projdata_header(path)
    except InterfileError:
        pass
    assert "interfile" in header


@given(n_rings=st.integers(2, 5), max_difference=st.integers(0, 3), n_views=st.integers(1, 6),
       n_tangential=st.integers(1, 9), arc=st.booleans(), storage=st.sampled_from(
           ["Segment_AxialPos_View_TangPos", "Segment_View_AxialPos_TangPos"]), seed=st.integers(0, 1000))
@settings(max_examples=30)
def test_written_projection_data_reads_back_identically(tmp_path_factory, n_rings, max_difference, n_views,
                                                         n_tangential, arc, storage, seed) -> None:
    scanner = CylindricalScanner("fuzz", n_rings, 32, 100.0, 5.0, 4.0, 3.0, view_offset_rad=0.01 * seed)
    differences = [d for d in range(-min(max_difference, n_rings - 1), min(max_difference, n_rings - 1) + 1)]
    layout = ProjDataLayout(scanner, [(d, d) for d in differences], [n_rings - abs(d) for d in differences],
                            n_views, n_tangential, arc, storage_order=storage)
    data = np.random.default_rng(seed).standard_normal(layout.shape).astype(np.float32)
    folder = tmp_path_factory.mktemp("roundtrip")
    write_projdata(folder / "p.hs", data, layout)
    again, layout_again = read_projdata(folder / "p.hs")
    assert again.tobytes() == data.tobytes()
    assert repr(layout_again) == repr(layout)
    # the view offset is written in degrees, so it comes back to 1e-12 rad, not bit for bit
    assert layout_again.scanner.view_offset_rad == pytest.approx(layout.scanner.view_offset_rad, abs=1e-12)
    assert dataclasses.replace(layout_again.scanner, view_offset_rad=layout.scanner.view_offset_rad) == layout.scanner
    np.testing.assert_allclose(layout_again.view_angles_rad(), layout.view_angles_rad(), rtol=0, atol=1e-12)


# --- hostile headers: sizes checked before allocating, regular files only, data files in the header's folder ------

@pytest.mark.parametrize("changes, message", [
    ({"!matrix size [1]": "100000000"}, r"'matrix size \[1\] := 100000000' must lie in 1 \.\. 65536"),
    ({"!matrix size [3]": "1000000000"}, r"'matrix size \[3\] := 1000000000' must lie in 1 \.\. 65536"),
    ({"!matrix size [2]": "{-2}"}, r"'matrix size \[2\] := \{-2\}' must hold integers in 1 \.\. 65536"),
    ({"Number of rings": "1000000000"}, r"'number of rings := 1000000000' must lie in 1 \.\. 65536"),
    ({"!matrix size [1]": "60000", "!matrix size [3]": "60000", "!matrix size [2]": "{1}",
      "Number of detectors per ring": "60000"}, "ask for 3600000000 bins, more than the 2147483648"),
])
def test_huge_sizes_are_refused_before_anything_is_allocated(tmp_path: pathlib.Path, changes: dict,
                                                              message: str) -> None:
    path = _write_header(tmp_path, _projdata_lines(**changes), bytes(96))
    for read in (read_projdata_header, read_projdata):
        with bounded(), pytest.raises(InterfileError, match=message) as error:
            read(path)
        assert str(path) in str(error.value)


def test_a_huge_image_header_is_refused_naming_the_file_and_the_field(tmp_path: pathlib.Path) -> None:
    grid = ImageGrid((2, 3, 4), 1.0)
    write_image(tmp_path / "i.hv", np.zeros(grid.shape, np.float32), grid)
    text = (tmp_path / "i.hv").read_text()
    (tmp_path / "i.hv").write_text(text.replace("!matrix size [1] := 4", "!matrix size [1] := 100000000"))
    with bounded(), pytest.raises(InterfileError, match=r"i\.hv: 'matrix size \[1\] := 100000000' must lie in 1"):
        read_image(tmp_path / "i.hv")
    (tmp_path / "i.hv").write_text(text.replace("!matrix size [1] := 4", "!matrix size [1] := 40000").replace(
        "!matrix size [2] := 3", "!matrix size [2] := 40000"))  # 3.2e9 values: each axis within its limit
    with bounded(), pytest.raises(InterfileError, match=r"i\.hv: the header's sizes \(2, 40000, 40000\) ask for "
                                                        r"3200000000 values, more than the 2147483648"):
        read_image(tmp_path / "i.hv")
    (tmp_path / "i.hv").write_text(text.replace("!matrix size [1] := 4", "!matrix size [1] := 20000").replace(
        "!matrix size [2] := 3", "!matrix size [2] := 20000"))  # 8e8 values: not in the 96-byte data file
    with bounded(), pytest.raises(InterfileError, match=r"i\.v is truncated: the header's sizes \(2, 20000, 20000\)"):
        read_image(tmp_path / "i.hv")
    (tmp_path / "i.hv").write_text(text.replace("number of dimensions := 3", "data offset in bytes [1] := -8\n"
                                                "number of dimensions := 3"))
    with pytest.raises(InterfileError, match=r"'data offset in bytes \[1\] := -8' must not be negative"):
        read_image(tmp_path / "i.hv")


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "sub/../../x.s"])
def test_data_files_outside_the_header_folder_are_refused(tmp_path: pathlib.Path, name: str) -> None:
    folder = tmp_path / "a" / "b"
    folder.mkdir(parents=True)
    (tmp_path / "a" / "x.s").write_bytes(bytes(96))
    path = _write_header(folder, _projdata_lines(**{"name of data file": name}))
    with pytest.raises(InterfileError, match=f"x.hs: 'name of data file := {re.escape(name)}' is refused: .* "
                                             f"outside the folder {re.escape(str(folder))}"):
        read_projdata(path)
    read_projdata_header(path)  # a template needs no data file


def test_data_files_below_the_header_folder_and_links_in_it_are_read(tmp_path: pathlib.Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.s").write_bytes(np.arange(24, dtype="<f4").tobytes())
    data, _ = read_projdata(_write_header(tmp_path, _projdata_lines(**{"name of data file": "data/../data/x.s"})))
    assert sorted(data.ravel().tolist()) == list(range(24))
    (tmp_path / "link.s").symlink_to(tmp_path / "data" / "x.s")
    again, _ = read_projdata(_write_header(tmp_path, _projdata_lines(**{"name of data file": "link.s"}), name="y"))
    np.testing.assert_array_equal(again, data)


def test_devices_and_fifos_are_refused_at_once(tmp_path: pathlib.Path) -> None:
    (tmp_path / "zero.s").symlink_to("/dev/zero")
    make_fifo(tmp_path / "fifo.s")
    for data_name, kind in (("zero.s", "a device"), ("fifo.s", "a FIFO")):
        path = _write_header(tmp_path, _projdata_lines(**{"name of data file": data_name}), name=data_name[:-2])
        with bounded(), pytest.raises(InterfileError, match=f"{data_name} is {kind}, not a regular file"):
            read_projdata(path)
    (tmp_path / "zero.hv").symlink_to("/dev/zero")
    with bounded(), pytest.raises(InterfileError, match="zero.hv is a device, not a regular file"):
        read_header(tmp_path / "zero.hv")
    with bounded(), pytest.raises(InterfileError, match="fifo.s is a FIFO, not a regular file"):
        read_header(tmp_path / "fifo.s")


def test_a_data_file_given_as_the_header_is_refused_unread(tmp_path: pathlib.Path) -> None:
    (tmp_path / "big.hv").write_bytes(b"!INTERFILE :=\n" + bytes(2 ** 20))
    with bounded(max_bytes=4 * 2 ** 20), pytest.raises(InterfileError, match="larger than 1048576 bytes"):
        read_header(tmp_path / "big.hv")


def test_a_long_run_of_spaces_in_a_key_is_parsed_quickly(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "spaces.hv"
    path.write_text("!INTERFILE :=\nmatrix" + " " * 400_000 + "size := 3\n")
    with bounded(seconds=5.0):
        assert read_header(path).integer("matrix size") == 3


def test_complex_images_are_refused_naming_the_file_and_the_dtype(tmp_path: pathlib.Path) -> None:
    grid = ImageGrid((2, 3, 4), 1.0)
    with pytest.raises(ValueError, match=r"cannot write .*c\.hv: Interfile holds real numbers .* dtype complex128"):
        write_image(tmp_path / "c.hv", np.zeros(grid.shape, np.complex128), grid)
    layout = _small_layout("Segment_AxialPos_View_TangPos")
    with pytest.raises(ValueError, match=r"cannot write .*c\.hs: .* the data has dtype complex64"):
        write_projdata(tmp_path / "c.hs", np.zeros(layout.shape, np.complex64), layout)
    assert list(tmp_path.iterdir()) == []
