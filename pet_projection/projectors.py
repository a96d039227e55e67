"""Joseph forward and back projectors (exact adjoint pairs) as linear operators."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .arrays import as_host_array
from .geometry import ParallelBeamGeometry
from .grid import MAX_LENGTH_MM, ImageGrid
from .kernels import cpu
from .kernels.joseph import LORRays, ParallelBeamRays, PETSinogramRays
from .kernels.columns import column_shape
from .kernels.tof import TOFBins, tof_bins
from .operators import LinearOperator
from .scanner import SinogramAxes
from .tof import TOFParameters

# The LOR back projection splits each image's rays into at most this many chunks
# (fewer when the batch alone has enough images) so a single image still keeps
# all cores busy. It is a constant, not the thread count, so that results are
# bitwise identical on every machine and with any number of threads.
BACKPROJECTION_CHUNKS = 16
# Upper bound on the scratch memory of those chunk buffers.
BACKPROJECTION_BUFFER_BYTES = 256 * 2**20
# Upper bound on the column tables of the sinogram back projection (kernels/columns.py): this many bytes of them
# are filled before they are emptied into the image. A constant, so the order of every voxel's sum (and its bits)
# is the same on every machine.
COLUMN_STORE_BYTES = 64 * 2**20


def _n_chunks(n_images: int, n_rays: int, n_voxels: int, itemsize: int) -> int:
    n_images = max(n_images, 1)
    chunks = min(n_rays, max(1, -(-BACKPROJECTION_CHUNKS // n_images)))
    return max(1, min(chunks, BACKPROJECTION_BUFFER_BYTES // (n_images * n_voxels * itemsize)))


class ParallelBeamProjector(LinearOperator):
    """Joseph parallel-beam projector of 2D images or stacks of slices.

    Maps images ``(..., [nz,] ny, nx)`` to sinograms ``(..., [nz,] n_views,
    n_bins)`` (see :class:`ParallelBeamGeometry` for the ray convention). Ray
    endpoints are computed inside the kernel from the (view, bin) index; no
    per-ray arrays are stored. ``adjoint`` is the exact transpose (same
    voxels, same weights), deterministic to the bit.

    Parameters
    ----------
    geometry : ParallelBeamGeometry
    """

    def __init__(self, geometry: ParallelBeamGeometry) -> None:
        if not isinstance(geometry, ParallelBeamGeometry):
            raise TypeError(f"geometry must be a ParallelBeamGeometry, got {type(geometry).__name__}")
        self.geometry = geometry
        grid = geometry.grid
        self.in_shape = grid.shape
        self.out_shape = geometry.sinogram_shape
        self.view_axis = len(self.out_shape) - 2  # index of the view axis in out_shape
        _, ci, cj = grid.index_offsets()
        dy, dx = grid.voxel_size_mm[-2:]
        first_bin = -(geometry.n_bins - 1) / 2.0 * geometry.bin_width_mm + geometry.radial_offset_mm
        self._rays = ParallelBeamRays(grid.shape[-2], grid.shape[-1], dy, dx, ci, cj, geometry.angles_rad,
                                      geometry.n_bins, first_bin, geometry.bin_width_mm)
        self._table = cpu.view_table(self._rays)  # (n_views, 6) constants, shared by the CPU and CUDA kernels

    def _apply(self, x: np.ndarray) -> np.ndarray:
        ny, nx = self.in_shape[-2:]
        slices = x.reshape(-1, ny, nx)
        transposed = np.ascontiguousarray(slices.transpose(0, 2, 1))
        out = np.empty((slices.shape[0], self.geometry.n_views, self.geometry.n_bins), dtype=x.dtype)
        cpu.parallel_beam_forward(slices, transposed, self._table, out)
        return out.reshape(x.shape[:x.ndim - 2] + out.shape[1:])

    def _apply_device(self, x: Any) -> Any:
        from . import device
        from .kernels import cuda as kernels

        library = device.DeviceLibrary(x)
        ny, nx = self.in_shape[-2:]
        slices = x.reshape(-1, ny, nx)
        dtype = np.dtype(x.__cuda_array_interface__["typestr"])
        out = library.empty((slices.shape[0], self.geometry.n_views, self.geometry.n_bins), dtype)
        stream = library.stream()
        kernels.parallel_beam_forward(device.view(slices), device.view(library.transposed_slices(x, ny, nx)),
                                      device.cached_on_device(self, library, lambda lib: lib.kernel_copy(self._table)),
                                      device.view(out), stream)
        return out.reshape(tuple(x.shape[:len(x.shape) - 2]) + tuple(out.shape[1:]))

    def _adjoint_device(self, y: Any) -> Any:
        from . import device
        from .kernels import cuda as kernels

        library = device.DeviceLibrary(y)
        ny, nx = self.in_shape[-2:]
        sinograms = y.reshape(-1, self.geometry.n_views, self.geometry.n_bins)
        dtype = np.dtype(y.__cuda_array_interface__["typestr"])
        out = library.empty((sinograms.shape[0], ny, nx), dtype)
        kernels.parallel_beam_back(device.view(sinograms),
                                   device.cached_on_device(self, library, lambda lib: lib.kernel_copy(self._table)),
                                   device.view(out), library.stream())
        return out.reshape(tuple(y.shape[:len(y.shape) - 2]) + (ny, nx))

    def _adjoint(self, y: np.ndarray) -> np.ndarray:
        ny, nx = self.in_shape[-2:]
        sinograms = y.reshape(-1, self.geometry.n_views, self.geometry.n_bins)
        slices = np.zeros((sinograms.shape[0], ny, nx), dtype=y.dtype)
        transposed = np.zeros((sinograms.shape[0], nx, ny), dtype=y.dtype)
        cpu.parallel_beam_back(sinograms, self._table, slices, transposed)
        return slices.reshape(y.shape[:y.ndim - 2] + (ny, nx))

    def view_subset(self, views: Any) -> "ParallelBeamProjector":
        """The projector of the sinogram views ``views`` only (an OSEM subset); see :func:`check_views`."""
        g = self.geometry
        views = check_views(views, g.n_views)
        return ParallelBeamProjector(ParallelBeamGeometry(g.grid, views.size, g.n_bins, g.bin_width_mm,
                                                          g.angles_rad[views], g.radial_offset_mm))

    def __repr__(self) -> str:
        return f"ParallelBeamProjector({self.geometry!r})"


def check_views(views: Any, n_views: int) -> np.ndarray:
    """Validated view indices for :meth:`view_subset`: a non-empty 1D integer sequence in ``[0, n_views)``.

    The subset projector's sinograms hold these views in the given order (for
    example ``SinogramLayout.view_subsets(n)[k]``), so data for it is
    ``np.take(sinogram, views, axis=view_axis)``.
    """
    array = np.asarray(views)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
        raise ValueError(f"views must be a non-empty 1D sequence of integer view indices, got {views!r}")
    if array.min() < 0 or array.max() >= n_views:
        raise ValueError(f"views must lie in [0, {n_views}), got values from {array.min()} to {array.max()}")
    return array.astype(np.int64)


def _endpoints(name: str, values: Any, grid: ImageGrid) -> np.ndarray:
    array = as_host_array(values, name)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real coordinates in mm, got dtype {array.dtype}")
    if array.ndim < 1 or array.shape[-1] not in (2, 3) or (grid.ndim == 3 and array.shape[-1] != 3):
        expected = "(..., 3)" if grid.ndim == 3 else "(..., 2) or (..., 3)"
        raise ValueError(f"{name} must have shape {expected} with (x, y[, z]) in mm for a {grid.ndim}D grid, "
                         f"got {tuple(array.shape)}")
    dtype = array.dtype if array.dtype in (np.float32, np.float64) else np.float64
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    if array.size and np.abs(array).max() > MAX_LENGTH_MM:
        raise ValueError(f"{name} must lie within +-{MAX_LENGTH_MM:g} mm of the origin")
    if array.shape[-1] == 2:
        array = np.concatenate([array, np.zeros(array.shape[:-1] + (1,), dtype=array.dtype)], axis=-1)
    elif grid.ndim == 2 and np.any(array[..., 2] != 0):
        raise ValueError(f"{name} has z != 0, but a 2D grid is the plane z = 0")
    return np.ascontiguousarray(array.reshape(-1, 3), dtype=dtype)


class _SegmentProjector(LinearOperator):
    """Images ``(..., *grid.shape)`` to values of segments ``(..., *out_shape)``.

    Each segment is traced by :func:`~.kernels.segments.project_ray`.

    Subclasses set ``grid``, ``in_shape``, ``out_shape``, ``_n_rays`` and
    ``_rays`` (a segment ray set of the kernels); TOF projectors also set
    ``_tof`` (:class:`TOFBins`) and ``_n_values``, the TOF values per ray.
    """

    grid: ImageGrid
    _n_rays: int
    _rays: Any
    _tof: TOFBins | None = None
    _n_values: int = 0  # 0: one value per ray; > 0: TOF values per ray

    def _ray_shape(self, n_images: int) -> tuple[int, ...]:
        return (n_images, self._n_rays) + ((self._n_values,) if self._n_values else ())

    def _apply(self, x: np.ndarray) -> np.ndarray:
        batch = x.shape[:x.ndim - self.grid.ndim]
        out = np.zeros(self._ray_shape(math.prod(batch)), dtype=x.dtype)
        cpu.forward(x.reshape(-1), self.grid.n_voxels, self._rays, self._tof, out)
        return out.reshape(batch + self.out_shape)

    def _adjoint(self, y: np.ndarray) -> np.ndarray:
        batch = y.shape[:y.ndim - len(self.out_shape)]
        n_images = math.prod(batch)
        images = np.zeros(n_images * self.grid.n_voxels, dtype=y.dtype)
        n_chunks = _n_chunks(n_images, self._n_rays, self.grid.n_voxels, y.dtype.itemsize)
        buffers = images.reshape(1, -1) if n_chunks == 1 else np.zeros((n_chunks, images.size), dtype=y.dtype)
        cpu.back(y.reshape(self._ray_shape(n_images)), self.grid.n_voxels, self._rays, self._tof, buffers, images)
        return images.reshape(batch + self.in_shape)

    def _device_tables(self, library: Any) -> tuple[Any, Any]:
        """The ray set and TOF bins with their arrays on ``library``'s device (copied once per device)."""
        from . import device

        return device.cached_on_device(self, library, lambda lib: (_on_device(self._rays, lib),
                                                       None if self._tof is None else _on_device(self._tof, lib)))

    def _apply_device(self, x: Any) -> Any:
        from . import device
        from .kernels import cuda as kernels

        library = device.DeviceLibrary(x)
        batch = tuple(x.shape[:len(x.shape) - self.grid.ndim])
        dtype = np.dtype(x.__cuda_array_interface__["typestr"])
        out = library.empty(self._ray_shape(math.prod(batch)), dtype)
        stream = library.stream()
        if self._tof is not None:  # the TOF kernels add into their bins
            kernels.fill_zero(device.view(out.reshape(-1)), stream)
        rays, tof = self._device_tables(library)
        kernels.segment_forward(device.view(x.reshape(-1)), self.grid.n_voxels, rays, tof, device.view(out), stream)
        return out.reshape(batch + self.out_shape)

    def _adjoint_device(self, y: Any) -> Any:
        from . import device
        from .kernels import cuda as kernels

        library = device.DeviceLibrary(y)
        batch = tuple(y.shape[:len(y.shape) - len(self.out_shape)])
        n_images = math.prod(batch)
        dtype = np.dtype(y.__cuda_array_interface__["typestr"])
        out = library.empty((n_images * self.grid.n_voxels,), dtype)
        rays, tof = self._device_tables(library)
        kernels.segment_back(device.view(y.reshape(self._ray_shape(n_images))), library.max_abs(y), self.grid.n_voxels,
                             rays, tof, device.view(out), library.stream())
        return out.reshape(batch + self.in_shape)


def _on_device(table: tuple, library: Any) -> tuple:
    """A kernel named tuple (ray set, TOF bins) with every NumPy array field copied to ``library``'s device."""
    return table._replace(**{name: library.kernel_copy(value) for name, value in table._asdict().items()
                             if isinstance(value, np.ndarray)})


def _tof_bins(tof: Any, event_bins: np.ndarray | None = None) -> TOFBins:
    if not isinstance(tof, TOFParameters):
        raise TypeError(f"tof must be a TOFParameters, got {type(tof).__name__}")
    bins = np.zeros(0, dtype=np.int64) if event_bins is None else event_bins
    return tof_bins(tof.n_bins, tof.bin_width_mm, tof.sigma_mm, tof.n_sigmas, bins)


def _grid_rays(grid: ImageGrid) -> tuple:
    """The nine grid fields every segment ray set starts with: ``(nz, ny, nx, dz, dy, dx, ck, ci, cj)``."""
    return grid.shape3d + grid.voxel_size3d_mm + grid.index_offsets()


class LORProjector(_SegmentProjector):
    """Joseph projector along arbitrary line segments (PET lines of response, listmode events).

    Parameters
    ----------
    grid : ImageGrid
        2D or 3D image grid.
    xstart_mm, xend_mm : array_like, shape ``(..., 3)``
        Segment endpoints ``(x, y, z)`` in mm; for a 2D grid also ``(..., 2)``
        (the plane ``z = 0``). float32 endpoints stay float32 (less memory for
        long event lists); other real types become float64.

    Notes
    -----
    Maps images ``(..., *grid.shape)`` to ray values ``(..., *lor_shape)`` with
    ``lor_shape = xstart_mm.shape[:-1]``. The image is sampled on the voxel
    planes that lie between the two endpoints, so segments that end inside the
    grid are cut there (PET LORs end at detectors, outside the image); parallelproj
    also samples the plane before a start point inside the image, so on a uniform
    image box it is the farther from the exact chord (measurements: docs/results/parallelproj.md).
    """

    def __init__(self, grid: ImageGrid, xstart_mm: Any, xend_mm: Any) -> None:
        if not isinstance(grid, ImageGrid):
            raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
        xstart = _endpoints("xstart_mm", xstart_mm, grid)
        xend = _endpoints("xend_mm", xend_mm, grid)
        lor_shape = tuple(as_host_array(xstart_mm, "xstart_mm").shape[:-1])
        end_shape = tuple(as_host_array(xend_mm, "xend_mm").shape[:-1])
        if end_shape != lor_shape:
            raise ValueError(f"xstart_mm and xend_mm must describe the same LORs, got shapes {lor_shape} (+3) "
                             f"and {end_shape} (+3)")
        if xstart.dtype != xend.dtype:
            xstart, xend = xstart.astype(np.float64), xend.astype(np.float64)
        self.grid = grid
        self.xstart_mm = xstart.reshape(lor_shape + (3,))
        self.xend_mm = xend.reshape(lor_shape + (3,))
        self.in_shape = grid.shape
        self.out_shape = lor_shape
        self._n_rays = math.prod(lor_shape)
        self._rays = LORRays(*_grid_rays(grid), xstart, xend)

    def __repr__(self) -> str:
        return f"LORProjector(grid={self.grid!r}, n_lors={self._n_rays}, lor_shape={self.out_shape})"


class PETSinogramProjector(_SegmentProjector):
    """Joseph projector of a 3D image into a ring scanner's (non-TOF) sinogram.

    Parameters
    ----------
    layout : SinogramLayout or ProjDataLayout
        Scanner, Michelogram (span, segments), radial bins and axis order: a
        :class:`~pet_projection.SinogramLayout` (crystal pairs of a ring
        scanner) or a :class:`~pet_projection.projdata.ProjDataLayout` (STIR's
        cylindrical projection data, e.g. read from an Interfile ``.hs``).
    grid : ImageGrid
        3D image grid ``(nz, ny, nx)``; the scanner axis is z.
    views : sequence of int, optional
        Project only these views of the layout, in this order (an OSEM subset);
        default all views.
    tof : TOFParameters, optional
        Time of flight: every bin gets a trailing axis of ``tof.n_bins`` TOF
        bins, positive TOF towards the LOR's end point of :meth:`lor_endpoints`.

    Notes
    -----
    Maps images ``(..., nz, ny, nx)`` to sinograms ``(..., *layout.shape)``
    (with ``len(views)`` views; TOF: ``(..., *layout.shape, tof.n_bins)``).
    Each bin's LOR endpoints are looked up inside the kernel from its (radial,
    view, plane) index: the transaxial ends of its (view, radial) entry and
    the z of both ends in its plane (see
    :meth:`~pet_projection.scanner.SinogramAxes.transaxial_endpoints_mm`).
    Only these two small tables are stored, never endpoint arrays of the
    sinogram's size. The values equal ``LORProjector(grid, *self.lor_endpoints())``
    (LORs cut at their crystals where those lie inside the image, unlike parallelproj's:
    docs/results/parallelproj.md). The CPU kernels trace the LORs of each (view,
    radial) bin together, as :mod:`~pet_projection.kernels.columns` describes.
    """

    def __init__(self, layout: SinogramAxes, grid: ImageGrid, views: Any = None,
                 tof: TOFParameters | None = None) -> None:
        if not isinstance(layout, SinogramAxes):
            raise TypeError(f"layout must be a SinogramLayout or ProjDataLayout, got {type(layout).__name__}")
        if not isinstance(grid, ImageGrid) or grid.ndim != 3:
            raise ValueError(f"grid must be a 3D ImageGrid (nz, ny, nx), got {grid!r}")
        self.layout = layout
        self.grid = grid
        self.views = np.arange(layout.n_views) if views is None else check_views(views, layout.n_views)
        self.tof = tof
        sizes = {"radial": layout.n_radial, "view": self.views.size, "plane": layout.n_planes}
        self.in_shape = grid.shape
        self.out_shape = tuple(sizes[name] for name in layout.axis_order)
        self.view_axis = layout.axis_order.index("view")  # index of the view axis in out_shape
        self._n_rays = math.prod(self.out_shape)
        strides = {name: math.prod(sizes[later] for later in layout.axis_order[position + 1:])
                   for position, name in enumerate(layout.axis_order)}
        self._rays = PETSinogramRays(
            *_grid_rays(grid), np.ascontiguousarray(layout.transaxial_endpoints_mm()[self.views], dtype=np.float64),
            np.ascontiguousarray(layout.plane_endpoints_z_mm(), dtype=np.float64), layout.n_radial, self.views.size,
            layout.n_planes, strides["radial"], strides["view"], strides["plane"])
        if tof is not None:
            self._tof = _tof_bins(tof)
            self._n_values = tof.n_bins
            self.out_shape += (tof.n_bins,)

    def _apply(self, x: np.ndarray) -> np.ndarray:
        batch = x.shape[:x.ndim - self.grid.ndim]
        out = np.zeros(self._ray_shape(math.prod(batch)), dtype=x.dtype)
        cpu.sinogram_forward(x.reshape(-1), self.grid.n_voxels, self._rays, self._tof, out)
        return out.reshape(batch + self.out_shape)

    def _adjoint(self, y: np.ndarray) -> np.ndarray:
        batch = y.shape[:y.ndim - len(self.out_shape)]
        n_images = math.prod(batch)
        images = np.zeros(n_images * self.grid.n_voxels, dtype=y.dtype)
        rows, n_t = column_shape(self._rays)
        n_store = max(1, min(self.layout.n_radial, COLUMN_STORE_BYTES // (rows * n_t * 8)))
        store = np.empty((n_store, rows, n_t))
        cpu.sinogram_back(y.reshape(self._ray_shape(n_images)), self.grid.n_voxels, self._rays, self._tof, store,
                          images)
        return images.reshape(batch + self.in_shape)

    def lor_endpoints(self) -> tuple[np.ndarray, np.ndarray]:
        """``(xstart_mm, xend_mm)`` of every LOR, each of the non-TOF sinogram shape ``+ (3,)`` (checks, listmode)."""
        view_axis = self.layout.axis_order.index("view")
        return tuple(np.take(end, self.views, axis=view_axis) for end in self.layout.lor_endpoints())

    def view_subset(self, views: Any) -> "PETSinogramProjector":
        """The projector of sinogram views ``self.views[views]`` only (an OSEM subset)."""
        return PETSinogramProjector(self.layout, self.grid, self.views[check_views(views, self.views.size)], self.tof)

    def __repr__(self) -> str:
        return f"PETSinogramProjector(grid={self.grid!r}, sinogram_shape={self.out_shape}, tof={self.tof!r})"


class ListmodeProjector(LORProjector):
    """Joseph projector of a 3D image onto a list of PET events (LORs), optionally with TOF.

    Parameters
    ----------
    grid : ImageGrid
        3D (or 2D) image grid.
    xstart_mm, xend_mm : array_like, shape ``(n_events, 3)``
        Event LOR endpoints ``(x, y, z)`` in mm (e.g. detector centres).
    tof_bin : array_like of int, shape ``(n_events,)``, optional
        TOF bin of each event, in ``[0, tof.n_bins)`` with the bin convention of
        :class:`TOFParameters` (positive towards ``xend_mm``). Requires ``tof``.
    tof : TOFParameters, optional
        TOF resolution and binning; with ``tof_bin`` each event's value is the
        TOF-weighted line integral of its bin only.

    Notes
    -----
    Maps images ``(..., *grid.shape)`` to event values ``(..., n_events)``; an
    event equals the sinogram bin (TOF bin) of the same LOR, so histogramming
    events into a sinogram and back projecting gives the same image as back
    projecting the events one by one.
    """

    def __init__(self, grid: ImageGrid, xstart_mm: Any, xend_mm: Any, tof_bin: Any = None,
                 tof: TOFParameters | None = None) -> None:
        super().__init__(grid, xstart_mm, xend_mm)
        if len(self.out_shape) != 1:
            raise ValueError(f"listmode endpoints must have shape (n_events, 3), got {self.out_shape + (3,)}")
        self.tof = tof
        self.tof_bin = None
        if (tof_bin is None) != (tof is None):
            raise ValueError("give both tof_bin and tof for TOF listmode, or neither")
        if tof is not None:
            bins = as_host_array(tof_bin, "tof_bin")
            if bins.dtype.kind not in "iu" or bins.shape != self.out_shape:
                raise ValueError(f"tof_bin must hold one integer TOF bin per event, shape {self.out_shape}, "
                                 f"got dtype {bins.dtype} and shape {tuple(bins.shape)}")
            if bins.size and (bins.min() < 0 or bins.max() >= tof.n_bins):
                raise ValueError(f"tof_bin must lie in [0, {tof.n_bins}), got values from {bins.min()} to {bins.max()}")
            self.tof_bin = np.ascontiguousarray(bins, dtype=np.int64)
            self._tof = _tof_bins(tof, self.tof_bin)
            self._n_values = 1  # one TOF value per event: the kernels' (n_events, 1) axis is reshaped away

    def __repr__(self) -> str:
        return f"ListmodeProjector(grid={self.grid!r}, n_events={self._n_rays}, tof={self.tof!r})"
