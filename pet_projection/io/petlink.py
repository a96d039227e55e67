"""Siemens mMR listmode: PETLINK 32-bit words, decoded in chunks and histogrammed into STIR sinogram layouts.

A listmode file is a stream of little-endian 32-bit words (Siemens' PETLINK
format; bit layout as STIR's ``CListRecordECAT8_32bit``):

- bit 31 = 0: a coincidence event. Bits 0-29 are its bin address in the
  scanner's full span-1 sinogram (tangential position fastest, then view,
  then sinogram; sinograms by segment 0, -1, +1, ..., each ``n_rings - |d|``
  planes), bit 30 is 1 for a prompt and 0 for a delayed coincidence.
- bit 31 = 1: a tag. Bits 29-30 = 0 make it a time tag whose bits 0-28 count
  milliseconds since the start of the scan; other tags (dead time, gantry,
  patient monitoring) are counted and skipped.

Files are read ``chunk_words`` words at a time, so a multi-GB file needs only
the chunk and the output histogram in memory.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass
from typing import Iterator, Optional, Union

import numpy as np

from ..projdata import ProjDataLayout, known_scanner
from ..validation import check_pair, check_real, positive_int
from .header import InterfileError, read_header
from .reading import open_regular

PathLike = Union[str, os.PathLike]

EVENT_ADDRESS_MASK = (1 << 30) - 1
TIME_MASK = (1 << 29) - 1


@dataclass(frozen=True)
class ListmodeChunk:
    """The coincidence events of one chunk of words.

    Attributes
    ----------
    plane, view, radial : ndarray of int64, shape ``(n_events,)``
        Bin of each event in the listmode's full sinogram layout
        (:attr:`PETLINKListmode.layout`, STIR order).
    prompt : ndarray of bool, shape ``(n_events,)``
        True for prompts, False for delayed coincidences.
    time_ms : ndarray of int64, shape ``(n_events,)``
        Time of the last time tag before each event (ms since scan start; 0 before the first tag).
    n_time_tags, n_other_tags : int
        Tags in the chunk.
    """

    plane: np.ndarray
    view: np.ndarray
    radial: np.ndarray
    prompt: np.ndarray
    time_ms: np.ndarray
    n_time_tags: int
    n_other_tags: int


@dataclass(frozen=True)
class ListmodeCounts:
    """Word counts of a listmode file: prompts, delayeds, time tags, other tags and the last time tag (ms)."""

    prompts: int
    delayeds: int
    time_tags: int
    other_tags: int
    last_time_ms: int


class PETLINKListmode:
    """A Siemens mMR listmode file (PETLINK 32-bit words) with its Interfile header (``.l.hdr``).

    Parameters
    ----------
    header_path : str or path
        The listmode header, e.g. ``PET_ACQ_small.l.hdr`` (its ``name of data
        file`` is relative to its folder).
    chunk_words : int, optional
        Words read and decoded at a time (default 2**20, 4 MiB).

    Attributes
    ----------
    scanner : CylindricalScanner
        STIR's mMR (the header's ``originating system``, e.g. ``2008``).
    layout : ProjDataLayout
        The full span-1 sinogram that event addresses index: segments 0, -1,
        +1, ..., up to ``%maximum ring difference``, ``%number of views``
        views and ``%number of projections`` tangential positions.

    Notes
    -----
    Only 32-bit, non-TOF, span-1 listmode is read (the mMR's); other headers
    raise :class:`~pet_projection.io.InterfileError` naming the key. The
    header's many vendor keys (isotope, singles, bed) are informational and
    not checked. Geometry comes from STIR's scanner of that name (effective
    radius 335 mm), not from the header's ``gantry crystal radius``, as in STIR.
    """

    def __init__(self, header_path: PathLike, chunk_words: int = 2 ** 20) -> None:
        header = read_header(header_path)
        self.header = header
        bits = header.integer("lm event and tag words format (bits)", 32)
        if bits != 32:
            raise header.error(f"'%LM event and tag words format (bits) := {bits}' is not supported (32 only)")
        if header.integer("number of tof time bins", 1) != 1:
            raise header.error("'%number of TOF time bins' > 1 is not supported (non-TOF mMR listmode only)")
        if header.integer("axial compression", 1) != 1:
            raise header.error("'%axial compression' must be 1: listmode addresses span-1 sinograms")
        name = header.text("originating system")
        scanner = known_scanner(name)
        if scanner is None:
            raise header.error(f"'originating system := {name}' is not a scanner this reader knows (Siemens mMR, 2008)")
        if header.integer("number of rings", scanner.n_rings) != scanner.n_rings:
            raise header.error(f"'number of rings := {header.text('number of rings')}' differs from the "
                               f"{scanner.name}'s {scanner.n_rings}")
        max_difference = header.integer("maximum ring difference", scanner.n_rings - 1)
        if not 0 <= max_difference < scanner.n_rings:
            raise header.error(f"'%maximum ring difference := {max_difference}' must lie in 0 .. {scanner.n_rings - 1}")
        differences = [0] + [sign * d for d in range(1, max_difference + 1) for sign in (-1, 1)]
        half = scanner.n_detectors_per_ring // 2
        n_views = header.size("number of views", half)
        if n_views != half:
            raise header.error(f"'%number of views := {n_views}' must be the {scanner.name}'s {half}: listmode "
                               f"events address the scanner's unmashed views")
        n_projections = header.size("number of projections", scanner.max_non_arc_corrected_bins,
                                    maximum=scanner.n_detectors_per_ring)
        self.scanner = scanner
        try:
            self.layout = ProjDataLayout(scanner, [(d, d) for d in differences],
                                         [scanner.n_rings - abs(d) for d in differences], n_views, n_projections,
                                         arc_corrected=False)
        except ValueError as error:
            raise header.error(f"the header describes no valid sinogram: {error}") from None
        self.data_path = header.data_path()
        self.offset = header.integer("data offset in bytes", 0)
        self.chunk_words = positive_int("chunk_words", chunk_words)
        try:
            with open_regular(self.data_path) as (_, size):
                pass
        except OSError as error:
            raise header.error(f"cannot open the listmode file {self.data_path}: {error.strerror or error}") from None
        except ValueError as error:
            raise header.error(f"cannot read the listmode file: {error}") from None
        if not 0 <= self.offset <= size:
            raise header.error(f"'data offset in bytes := {self.offset}' must lie in 0 .. {size}, the size of "
                               f"{self.data_path}")
        if (size - self.offset) % 4:
            raise header.error(f"the listmode file {self.data_path} holds {size - self.offset} bytes after the "
                               f"offset, not a whole number of 32-bit words (truncated?)")
        self.n_words = (size - self.offset) // 4

    def chunks(self) -> Iterator[ListmodeChunk]:
        """Decode the file chunk by chunk (see :class:`ListmodeChunk`)."""
        n_views, n_radial = self.layout.n_views, self.layout.n_radial
        n_bins = self.layout.n_planes * n_views * n_radial
        time_ms = 0
        left = self.n_words  # never more than the words there were when the file was opened (a growing file)
        with open_regular(self.data_path) as (handle, _):
            handle.seek(self.offset)
            while left:
                words = np.fromfile(handle, dtype="<u4", count=min(self.chunk_words, left))
                if words.size == 0:
                    raise InterfileError(f"{self.data_path} ends {left} words early: it shrank while being read")
                left -= words.size
                tag = (words >> 31).astype(bool)
                time_tag = tag & ((words >> 29) & 3 == 0)
                clock = np.where(time_tag, (words & TIME_MASK).astype(np.int64), -1)
                clock = np.maximum.accumulate(np.concatenate([[time_ms], clock]))[1:]
                if clock.size:
                    time_ms = int(clock[-1])
                event = ~tag
                address = (words[event] & EVENT_ADDRESS_MASK).astype(np.int64)
                if address.size and address.max() >= n_bins:
                    raise InterfileError(f"{self.data_path}: an event address {int(address.max())} lies beyond the "
                                         f"{n_bins} bins of the header's sinogram (wrong header for this file?)")
                yield ListmodeChunk(address // (n_views * n_radial), (address // n_radial) % n_views,
                                    address % n_radial, ((words[event] >> 30) & 1).astype(bool), clock[event],
                                    int(time_tag.sum()), int((tag & ~time_tag).sum()))

    def counts(self) -> ListmodeCounts:
        """Count prompts, delayeds and tags in one pass."""
        prompts = delayeds = time_tags = other = 0
        last = 0
        for chunk in self.chunks():
            prompts += int(chunk.prompt.sum())
            delayeds += int(chunk.prompt.size - chunk.prompt.sum())
            time_tags += chunk.n_time_tags
            other += chunk.n_other_tags
            if chunk.time_ms.size:
                last = max(last, int(chunk.time_ms.max()))
        return ListmodeCounts(prompts, delayeds, time_tags, other, last)

    def _selected(self, chunk: ListmodeChunk, prompts: bool,
                  time_window_ms: Optional[tuple[float, float]]) -> np.ndarray:
        keep = chunk.prompt if prompts else ~chunk.prompt
        if time_window_ms is not None:
            keep = keep & (chunk.time_ms >= time_window_ms[0]) & (chunk.time_ms < time_window_ms[1])
        return keep

    @staticmethod
    def _time_window(time_window_ms: Optional[tuple[float, float]]) -> Optional[tuple[float, float]]:
        """``(start, end)`` in ms, finite, ``start < end`` (or None)."""
        if time_window_ms is None:
            return None
        start, end = check_pair("time_window_ms", time_window_ms)
        start, end = check_real("time_window_ms start", start), check_real("time_window_ms end", end)
        if not start < end:
            raise ValueError(f"time_window_ms must run forwards, start < end (ms after the scan start), got "
                             f"({start:g}, {end:g})")
        return start, end

    def histogram(self, template: ProjDataLayout, prompts: bool = True,
                  time_window_ms: Optional[tuple[float, float]] = None) -> np.ndarray:
        """Histogram prompts (or, with ``prompts=False``, delayeds) into ``template``'s sinogram.

        Each event's bin becomes its detector pair (STIR's mapping,
        :meth:`ProjDataLayout.detector_pairs`), which is binned into
        ``template`` (:meth:`ProjDataLayout.bins_of_detector_pairs`); events
        outside the template (ring difference in no segment, tangential
        position out of range) are dropped, as STIR's ``lm_to_projdata`` does.

        Returns
        -------
        ndarray of float32, shape ``template.shape`` (in ``template.axis_order``)
        """
        time_window_ms = self._time_window(time_window_ms)
        if not isinstance(template, ProjDataLayout):
            raise TypeError(f"template must be a ProjDataLayout (e.g. read_projdata_header(...)), "
                            f"got {type(template).__name__}")
        if template.scanner.n_detectors_per_ring != self.scanner.n_detectors_per_ring \
                or template.scanner.n_rings != self.scanner.n_rings:
            raise ValueError(f"the template's scanner ({template.scanner.n_rings} rings x "
                             f"{template.scanner.n_detectors_per_ring} detectors) is not the listmode's "
                             f"({self.scanner.n_rings} x {self.scanner.n_detectors_per_ring})")
        counts = np.zeros(template.n_planes * template.n_views * template.n_radial, dtype=np.int32)
        for chunk in self.chunks():
            keep = self._selected(chunk, prompts, time_window_ms)
            pairs = self.layout.detector_pairs(chunk.plane[keep], chunk.view[keep], chunk.radial[keep])
            plane, view, radial, valid = template.bins_of_detector_pairs(*pairs)
            flat = (plane[valid] * template.n_views + view[valid]) * template.n_radial + radial[valid]
            bins, hits = np.unique(flat, return_counts=True)  # no temporary of the template's size per chunk
            counts[bins] += hits.astype(np.int32)
        stir = counts.reshape(template.n_planes, template.n_views, template.n_radial).astype(np.float32)
        return np.ascontiguousarray(template.from_stir(stir))

    def event_lors(self, prompts: bool = True,
                   time_window_ms: Optional[tuple[float, float]] = None) -> tuple[np.ndarray, np.ndarray]:
        """Detector positions ``(xstart_mm, xend_mm)`` of the selected events, each ``(n_events, 3)`` float32,
        for :class:`~pet_projection.ListmodeProjector` (ring 1's detector first, as STIR orders the LOR)."""
        time_window_ms = self._time_window(time_window_ms)
        starts, ends = [], []
        for chunk in self.chunks():
            keep = self._selected(chunk, prompts, time_window_ms)
            d1, r1, d2, r2 = self.layout.detector_pairs(chunk.plane[keep], chunk.view[keep], chunk.radial[keep])
            starts.append(self.scanner.detector_positions_mm(d1, r1).astype(np.float32))
            ends.append(self.scanner.detector_positions_mm(d2, r2).astype(np.float32))
        empty = np.zeros((0, 3), dtype=np.float32)
        return (np.concatenate(starts) if starts else empty), (np.concatenate(ends) if ends else empty)


def read_listmode(header_path: PathLike, chunk_words: int = 2 ** 20) -> PETLINKListmode:
    """Open a Siemens mMR listmode file by its header (see :class:`PETLINKListmode`)."""
    return PETLINKListmode(pathlib.Path(header_path), chunk_words)
