"""Siemens mMR listmode (PETLINK 32-bit words): counts, histograms, event LORs, bad files."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from pet_projection import ImageGrid, ListmodeProjector, PETSinogramProjector
from pet_projection.io import InterfileError, read_projdata_header
from pet_projection.io.petlink import read_listmode

from .hostile import bounded, make_fifo

HEADER = "stir_recon_test_pack/PET_ACQ_small.l.hdr.STIR"
TEMPLATE = "stir_recon_test_pack/Siemens_mMR_seg2.hs"
# Counts of the shipped file from an independent decoding (shared/data/third_party/README.md)
PROMPTS, DELAYEDS, TIME_TAGS = 218_881, 35_320, 613


@pytest.fixture(scope="module")
def listmode(third_party: pathlib.Path):
    return read_listmode(third_party / HEADER)


def test_counts_match_an_independent_decoding(listmode) -> None:
    counts = listmode.counts()
    assert (counts.prompts, counts.delayeds, counts.time_tags) == (PROMPTS, DELAYEDS, TIME_TAGS)
    assert counts.other_tags == 2  # 254,816 words in all
    assert counts.last_time_ms == 612  # one tag per millisecond from 0
    assert listmode.n_words == PROMPTS + DELAYEDS + TIME_TAGS + 2
    # the full span-1 Michelogram of 64 rings up to ring difference 60: the mMR's 4,084 sinograms
    assert listmode.layout.shape == (4084, 252, 344)


def test_decoding_does_not_depend_on_the_chunk_size(third_party: pathlib.Path, listmode) -> None:
    small = read_listmode(third_party / HEADER, chunk_words=1000)
    assert small.counts() == listmode.counts()
    template = read_projdata_header(third_party / TEMPLATE)
    np.testing.assert_array_equal(small.histogram(template, time_window_ms=(100, 400)),
                                  listmode.histogram(template, time_window_ms=(100, 400)))


def test_histograms_match_the_raw_addresses(third_party: pathlib.Path, listmode) -> None:
    template = read_projdata_header(third_party / TEMPLATE)  # segments -2, -1, 0, +1, +2 in this order
    prompts = listmode.histogram(template)
    assert prompts.shape == template.shape and prompts.dtype == np.float32
    # independently of the detector-pair mapping: the listmode's first 314 sinograms are its segments 0, -1, +1,
    # -2, +2 (64, 63, 63, 62, 62 planes), and a prompt's bin is its address (bits 0-29)
    words = np.fromfile(third_party / "stir_recon_test_pack" / "small_listmode_file.l", dtype="<u4")
    events = words[(words >> 30) == 1] & ((1 << 30) - 1)  # type 0, prompt bit 1
    size = 314 * 252 * 344
    raw = np.bincount(events[events < size], minlength=size).reshape(314, 252, 344)
    blocks = {0: raw[0:64], -1: raw[64:127], 1: raw[127:190], -2: raw[190:252], 2: raw[252:314]}
    np.testing.assert_array_equal(prompts, np.concatenate([blocks[d] for d in (-2, -1, 0, 1, 2)]))
    delayeds = listmode.histogram(template, prompts=False)
    assert 0 < delayeds.sum() < prompts.sum()
    halves = sum(listmode.histogram(template, time_window_ms=window) for window in ((0, 306), (306, 10_000)))
    np.testing.assert_array_equal(halves, prompts)
    # every event of the file has a bin in the listmode's own layout (nothing is lost between the two mappings)
    chunk = next(listmode.chunks())
    assert listmode.layout.bins_of_detector_pairs(*listmode.layout.detector_pairs(
        chunk.plane, chunk.view, chunk.radial))[3].all()


def test_event_lors_agree_with_the_histogram_bins(third_party: pathlib.Path, listmode) -> None:
    template = read_projdata_header(third_party / TEMPLATE)
    xstart, xend = listmode.event_lors(time_window_ms=(0, 100))
    assert xstart.shape == xend.shape and xstart.shape[1] == 3 and xstart.dtype == np.float32
    np.testing.assert_allclose(np.hypot(xstart[:, 0], xstart[:, 1]), 335.0, rtol=1e-6)  # STIR's effective radius
    # an event's value through the listmode projector equals its bin's through the sinogram projector, where the
    # bin's LOR is the event's detector pair (even tangential positions, see ProjDataLayout)
    chunk = next(listmode.chunks())
    keep = chunk.prompt & (chunk.time_ms < 100)
    pairs = listmode.layout.detector_pairs(chunk.plane[keep], chunk.view[keep], chunk.radial[keep])
    plane, view, radial, valid = template.bins_of_detector_pairs(*pairs)
    even = valid & ((radial - template.n_radial // 2) % 2 == 0) & (view < 24)  # views 0..23 keep the test quick
    grid = ImageGrid((16, 24, 24), (16.25, 25.0, 25.0))
    image = np.random.default_rng(5).random(grid.shape)
    events = ListmodeProjector(grid, xstart[even].astype(np.float64), xend[even].astype(np.float64))(image)
    sinogram = PETSinogramProjector(template, grid, views=np.arange(24))(image)
    np.testing.assert_allclose(events, sinogram[plane[even], view[even], radial[even]], rtol=1e-5, atol=1e-6)
    assert even.sum() > 20


def _copy_header(third_party: pathlib.Path, folder: pathlib.Path, replace: dict[str, str],
                 data: bytes | None = None) -> pathlib.Path:
    text = (third_party / HEADER).read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    source = third_party / "stir_recon_test_pack" / "small_listmode_file.l"
    if data is not None:
        text = text.replace("name of data file := small_listmode_file.l", "name of data file := lm.l")
        (folder / "lm.l").write_bytes(data)
    elif not (folder / source.name).exists():  # a data file kept elsewhere is linked into the header's folder
        (folder / source.name).symlink_to(source)
    path = folder / "lm.l.hdr"
    path.write_text(text)
    return path


def test_bad_listmode_files_get_clear_errors(third_party: pathlib.Path, tmp_path: pathlib.Path) -> None:
    words = (third_party / "stir_recon_test_pack" / "small_listmode_file.l").read_bytes()
    with pytest.raises(InterfileError, match="not a whole number of 32-bit words"):
        read_listmode(_copy_header(third_party, tmp_path, {}, words[:-2]))
    with pytest.raises(InterfileError, match="LM event and tag words format .* := 64' is not supported"):
        read_listmode(_copy_header(third_party, tmp_path, {"format (bits):=32": "format (bits):=64"}))
    with pytest.raises(InterfileError, match="'originating system := 1104' is not a scanner this reader knows"):
        read_listmode(_copy_header(third_party, tmp_path, {"!originating system:=2008": "!originating system:=1104"}))
    # a header claiming fewer ring differences than the file addresses
    small = read_listmode(_copy_header(third_party, tmp_path, {"%maximum ring difference:=60":
                                                               "%maximum ring difference:=10"}))
    with pytest.raises(InterfileError, match="event address .* lies beyond the .* bins of the header's sinogram"):
        small.counts()
    template = read_projdata_header(third_party / "stir_recon_demo/smalllong.hs")
    with pytest.raises(ValueError, match="the template's scanner .* is not the listmode's"):
        read_listmode(third_party / HEADER).histogram(template)


def test_hostile_listmode_headers_are_refused_before_reading(third_party: pathlib.Path, tmp_path: pathlib.Path) -> None:
    with bounded(), pytest.raises(InterfileError, match=r"lm\.l\.hdr: 'number of views := 100000000' must lie in 1"):
        read_listmode(_copy_header(third_party, tmp_path, {"%number of views:=252": "%number of views:=100000000"}))
    with pytest.raises(InterfileError, match="'%number of views := 126' must be the Siemens mMR's 252"):
        read_listmode(_copy_header(third_party, tmp_path, {"%number of views:=252": "%number of views:=126"}))
    with bounded(), pytest.raises(InterfileError, match=r"'number of projections := 100000000' must lie in 1 \.\. 504"):
        read_listmode(_copy_header(third_party, tmp_path, {"%number of projections:=344":
                                                           "%number of projections:=100000000"}))
    with pytest.raises(InterfileError, match="'data offset in bytes := 8' must lie in 0 .. 4"):
        read_listmode(_copy_header(third_party, tmp_path, {"!data offset in bytes:=0": "!data offset in bytes:=8"},
                                   bytes(4)))
    with pytest.raises(InterfileError, match="'name of data file := ../small_listmode_file.l' is refused"):
        read_listmode(_copy_header(third_party, tmp_path, {"name of data file := small_listmode_file.l":
                                                           "name of data file := ../small_listmode_file.l"}))


@pytest.mark.parametrize("kind", ["device", "FIFO"])
def test_a_device_or_fifo_as_the_listmode_file_is_refused_at_once(third_party: pathlib.Path, tmp_path: pathlib.Path,
                                                                  kind: str) -> None:
    if kind == "device":
        (tmp_path / "small_listmode_file.l").symlink_to("/dev/zero")
    else:
        make_fifo(tmp_path / "small_listmode_file.l")
    with bounded(), pytest.raises(InterfileError, match=f"small_listmode_file.l is a {kind}, not a regular file"):
        read_listmode(_copy_header(third_party, tmp_path, {})).counts()


@pytest.mark.parametrize("window, message", [
    ((400, 100), r"time_window_ms must run forwards, start < end .* got \(400, 100\)"),
    ((0, float("nan")), "time_window_ms end must be finite"),
    ((float("nan"), 10), "time_window_ms start must be finite"),
    ((5,), r"time_window_ms must be a \(low, high\) pair"),
])
def test_reversed_or_nan_time_windows_are_refused(third_party: pathlib.Path, listmode, window, message) -> None:
    template = read_projdata_header(third_party / TEMPLATE)
    with pytest.raises((TypeError, ValueError), match=message):
        listmode.histogram(template, time_window_ms=window)
    with pytest.raises((TypeError, ValueError), match=message):
        listmode.event_lors(time_window_ms=window)
