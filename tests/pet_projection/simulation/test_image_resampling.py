"""Images of any grid onto the simulation grid (pet_projection.simulation.image_resampling)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pet_projection import ImageGrid
from pet_projection.simulation.image_resampling import placement_shift_mm, resample_to_grid


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(2, 9), st.integers(3, 30), st.integers(3, 30)),
       voxel=st.tuples(st.floats(0.5, 6.0), st.floats(0.5, 6.0), st.floats(0.5, 6.0)),
       origin=st.tuples(st.floats(-20.0, 20.0), st.floats(-20.0, 20.0), st.floats(-20.0, 20.0)),
       seed=st.integers(0, 1000))
def test_resampling_conserves_the_activity_of_an_image_inside_the_grid(shape, voxel, origin, seed):
    source = ImageGrid(shape, voxel, origin)
    target = ImageGrid((16, 64, 64), (4.0, 3.0, 3.0))  # 64 x 192 x 192 mm: holds every source above (centred)
    image = np.random.default_rng(seed).random(shape)
    out = resample_to_grid(image, source, target)
    total = lambda values, grid: float(values.sum()) * float(np.prod(grid.voxel_size_mm))  # noqa: E731
    assert total(out, target) == pytest.approx(total(image, source), rel=1e-10)
    assert out.min() >= -1e-12 and out.shape == target.shape and out.flags.c_contiguous


def test_a_uniform_image_keeps_its_value_away_from_its_edges():
    source = ImageGrid((60, 60), 2.11)  # 126.6 mm
    out = resample_to_grid(np.full(source.shape, 3.0), source, ImageGrid((64, 64), 4.0))
    x, y = ImageGrid((64, 64), 4.0).meshgrid_mm()
    inner = (np.abs(x) < 55.0) & (np.abs(y) < 55.0)
    np.testing.assert_allclose(out[inner], 3.0, rtol=1e-12)
    assert np.all(out[(np.abs(x) > 70.0) | (np.abs(y) > 70.0)] == 0.0)


def test_voxel_exact_copy_where_the_voxels_line_up():
    # 2 mm voxels on a 2 mm grid: crop and pad, no interpolation (odd and even sizes: the shift rounds by half a voxel)
    image = np.random.default_rng(1).random((5, 101, 100))
    source = ImageGrid(image.shape, 2.0, (0.0, 4.0, -6.0))
    target = ImageGrid((6, 128, 128), 2.0)
    shift = placement_shift_mm(source, target)
    assert shift == (1.0, 5.0, -6.0)  # field-of-view centres aligned, then whole voxels
    out = resample_to_grid(image, source, target)
    assert np.count_nonzero(out) == image.size and set(np.unique(out)) - {0.0} == set(np.unique(image))
    np.testing.assert_array_equal(out[0:5, 13:114, 14:114], image)
    # larger than the target: cropped
    big = np.random.default_rng(2).random((8, 140, 140))
    cropped = resample_to_grid(big, ImageGrid(big.shape, 2.0), target)
    np.testing.assert_array_equal(cropped, big[1:7, 6:134, 6:134])


def test_bad_resampling_input():
    with pytest.raises(ValueError, match="its grid"):
        resample_to_grid(np.zeros((3, 3)), ImageGrid((4, 4), 1.0), ImageGrid((4, 4), 1.0))
    with pytest.raises(ValueError, match="one dimension"):
        placement_shift_mm(ImageGrid((4, 4, 4), 1.0), ImageGrid((4, 4), 1.0))
