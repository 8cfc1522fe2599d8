"""Volume measurements in physical units and 26-connected 3-D objects."""

from __future__ import annotations

import numpy as np
import pytest

from seg.errors import ImageError, VoxelSizeError
from seg.volumes import measure_volume, volume_objects, voxel_volume


@pytest.mark.parametrize(
    "spacing, unit, expected, shown",
    [
        ((50.0, 4.0, 4.0), "nm", 50e-3 * 4e-3 * 4e-3, "µm³"),
        ((0.5, 0.25, 0.25), "µm", 0.5 * 0.25 * 0.25, "µm³"),
        ((2.0, 1.0, 1.0), "mm", 2.0, "mm³"),
        ((2.0, 1.0, 1.0), None, 2.0, "voxel³"),
    ],
)
def test_volume_per_class_in_physical_units(spacing, unit, expected, shown):
    labels = np.ones((4, 6, 6), np.uint8)
    labels[1:3, 1:4, 1:4] = 2  # 18 voxels
    assert voxel_volume(spacing, unit) == pytest.approx(expected)
    rows = measure_volume(labels, ["background", "cell"], spacing, unit)
    cell = rows[1]
    assert cell["voxels"] == 18 and cell["objects"] == 1
    assert cell["volume"] == pytest.approx(18 * expected) and cell["volume_unit"] == shown
    assert cell["fraction"] == pytest.approx(18 / labels.size)


def test_objects_are_26_connected_and_listed_largest_first():
    labels = np.ones((5, 5, 5), np.uint8)
    labels[0, 0, 0] = labels[1, 1, 1] = 2  # touch at a corner only: one object in 3-D
    labels[3:5, 3:5, 3:5] = 2  # 8 voxels, a second object
    rows = volume_objects(labels, ["background", "cell"], (1.0, 1.0, 1.0), "µm")
    cells = [row for row in rows if row["class"] == 2]
    assert [row["voxels"] for row in cells] == [8, 2]
    assert cells[0]["bbox"] == "3:5,3:5,3:5" and cells[0]["centroid_z"] == pytest.approx(3.5)
    assert measure_volume(labels, ["background", "cell"], (1, 1, 1), "µm")[1]["objects"] == 2


def test_bad_labels_and_voxel_sizes_are_refused():
    with pytest.raises(ImageError):
        measure_volume(np.ones((4, 4), np.uint8), ["a"], (1, 1, 1), None)
    with pytest.raises(ImageError):
        measure_volume(np.full((2, 4, 4), 3, np.uint8), ["a", "b"], (1, 1, 1), None)
    with pytest.raises(VoxelSizeError):
        measure_volume(np.ones((2, 4, 4), np.uint8), ["a"], (0, 1, 1), None)
