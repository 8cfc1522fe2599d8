"""seg.objects: instances of one class (watershed splits touching disks) and their measurements."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from seg.errors import ImageError, SegError, SettingsError
from seg.objects import instance_tiff_bytes, measure_objects, segment_objects


def disks(shape: tuple[int, int], centres, radius: float) -> np.ndarray:
    """(H, W) uint8 label image: 2 inside any of the disks, 1 elsewhere."""
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    inside = np.zeros(shape, bool)
    for cy, cx in centres:
        inside |= (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
    return np.where(inside, 2, 1).astype(np.uint8)


def reference_split(mask: np.ndarray, min_distance: int) -> np.ndarray:
    """The plain whole-frame recipe that seg.objects' per-component watershed must equal."""
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    components, _ = ndi.label(mask, structure=np.ones((3, 3)))
    distance = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(distance, min_distance=min_distance, labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=mask, connectivity=2)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renumbering: the same pixels are background and the same pixels go together."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return (len(pairs[0]) == len(np.unique(a)) == len(np.unique(b))) and bool(((a == 0) == (b == 0)).all())


# --------------------------------------------------------------------------- splitting


@pytest.mark.parametrize(
    "layout, spacing",
    [
        *(("chain", s) for s in (0.9, 1.0, 1.2, 1.4, 1.6, 1.8, 1.95)),
        *(("cluster", s) for s in (1.8, 1.9, 1.95)),
    ],
)
def test_touching_disks_are_counted_one_by_one(layout, spacing):
    """Overlapping disks (centre spacing in radii; 2.0 would only touch) give one object each.

    A chain of four in a row; a cluster adds a fifth below the first two (a triangle of three).
    Three mutually overlapping disks spaced under about 1.8 radii have their deepest point between
    the centres, where the distance watershed finds an extra seed (documented in segment_objects).
    """
    radius = 12
    step = spacing * radius
    centres = [(40, 20 + i * step) for i in range(4)]
    if layout == "cluster":
        centres.append((40 + step * np.sqrt(3) / 2, 20 + step / 2))
    labels = disks((100, 110), centres, radius)
    assert ndi.label(labels == 2, structure=np.ones((3, 3)))[1] == 1  # one touching cluster

    instances = segment_objects(labels, 2)

    assert instances.dtype == np.int32
    assert instances.max() == len(centres)
    found = np.array(ndi.center_of_mass(instances > 0, instances, range(1, len(centres) + 1)))
    for cy, cx in centres:
        assert np.min(np.hypot(found[:, 0] - cy, found[:, 1] - cx)) < 0.25 * radius
    assert set(np.unique(instances)) == set(range(len(centres) + 1))
    if layout == "chain":  # a cluster's gap between three disks stays background
        np.testing.assert_array_equal(instances > 0, labels == 2)


def test_without_split_each_connected_region_is_one_object():
    labels = disks((80, 120), [(30, 30), (30, 48), (60, 100)], 10)
    assert segment_objects(labels, 2, split=False).max() == 2
    assert segment_objects(labels, 2, split=True).max() == 3


def test_disks_closer_than_min_distance_stay_one_object():
    labels = disks((60, 80), [(30, 30), (30, 36)], 12)
    assert segment_objects(labels, 2, min_distance=3).max() == 2
    assert segment_objects(labels, 2, min_distance=8).max() == 1


def test_per_component_watershed_equals_the_whole_frame_reference():
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[:300, :300]
    mask = np.zeros((300, 300), bool)
    for _ in range(70):
        cy, cx, r = rng.uniform(0, 300), rng.uniform(0, 300), rng.uniform(4, 16)
        mask |= (rows - cy) ** 2 + (cols - cx) ** 2 <= r * r
    ours = segment_objects(mask.astype(np.uint8), 1, min_size=0, fill_holes=False)
    reference = reference_split(mask, 5)
    assert ours.max() == reference.max() > 40
    assert same_partition(ours, reference)


def reference_objects(mask: np.ndarray, min_distance: int, *, split: bool = True) -> np.ndarray:
    """The documented recipe, whole frame: reference_split (or the 8-connected regions), then
    each object's own holes filled."""
    instances = reference_split(mask, min_distance) if split else ndi.label(mask, structure=np.ones((3, 3)))[0]
    for label in range(1, int(instances.max()) + 1):
        instances[ndi.binary_fill_holes(instances == label) & ~mask] = label
    return instances


def small_and_touching(rings: bool) -> np.ndarray:
    """(240, 240) bool: 400 tiny squares, 25 disks (some touching), optionally 3 rings."""
    rng = np.random.default_rng(8)
    rows, cols = np.mgrid[:240, :240]
    mask = np.zeros((240, 240), bool)
    mask[(rows % 6 < 4) & (cols % 6 < 4) & (rows < 60)] = True
    for _ in range(25):
        cy, cx, r = rng.uniform(70, 240), rng.uniform(0, 240), rng.uniform(4, 14)
        mask |= (rows - cy) ** 2 + (cols - cx) ** 2 <= r * r
    for cy, cx, r in ((100, 40, 6), (150, 200, 3), (200, 120, 12)) if rings else ():
        d2 = (rows - cy) ** 2 + (cols - cx) ** 2
        mask = (mask & (d2 > (r + 2) ** 2)) | ((d2 <= (r + 2) ** 2) & (d2 > r * r))
    return mask


def test_small_objects_and_touching_disks_match_the_reference():
    """Small objects skip the per-object work (they cannot split); the result is the same."""
    mask = small_and_touching(rings=False)
    ours = segment_objects(mask.astype(np.uint8), 1, min_size=0)
    reference = reference_objects(mask, 5)
    assert ours.max() == reference.max() > 420
    assert same_partition(ours, reference)


def test_holes_are_filled_object_by_object_as_in_the_reference():
    mask = small_and_touching(rings=True)
    unsplit = segment_objects(mask.astype(np.uint8), 1, min_size=0, split=False)
    assert same_partition(unsplit, reference_objects(mask, 5, split=False))
    # Split rings: a ring's distance ridge is a plateau of equal maxima; which of them become
    # seeds depends on peak_local_max's (unstable) sort, so only the counts and pixels must agree.
    split = segment_objects(mask.astype(np.uint8), 1, min_size=0)
    reference = reference_objects(mask, 5)
    assert split.max() == reference.max()
    np.testing.assert_array_equal(split > 0, reference > 0)


def test_a_grid_of_many_small_objects_is_counted_exactly():
    rows, cols = np.mgrid[:300, :300]
    labels = np.where((rows % 6 < 4) & (cols % 6 < 4), 2, 1).astype(np.uint8)
    instances = segment_objects(labels, 2)
    assert instances.max() == 50 * 50
    assert np.array_equal(np.bincount(instances.ravel())[1:], np.full(2500, 16))


def test_probabilities_by_argmax_or_threshold():
    labels = disks((60, 60), [(30, 30)], 10)
    proba = np.zeros((60, 60, 2), np.float32)
    proba[..., 1] = np.where(labels == 2, 0.6, 0.3)
    proba[..., 0] = 1 - proba[..., 1]
    np.testing.assert_array_equal(segment_objects(proba, 2) > 0, labels == 2)
    assert segment_objects(proba, 2, threshold=0.7).max() == 0
    assert segment_objects(proba, 2, threshold=0.2).max() == 1  # everything
    np.testing.assert_array_equal(segment_objects(proba, 1, split=False, fill_holes=False) > 0, labels == 1)


def test_a_gap_enclosed_by_several_objects_is_not_filled():
    radius, step = 12, 1.95 * 12
    centres = [(30, 30), (30, 30 + step), (30 + step * np.sqrt(3) / 2, 30 + step / 2)]
    labels = disks((80, 80), centres, radius)
    gap = (round(30 + step / (2 * np.sqrt(3))), round(30 + step / 2))
    assert labels[gap] == 1
    assert segment_objects(labels, 2)[gap] == 0
    assert segment_objects(labels, 2, split=False)[gap] > 0  # one object: its hole is filled


def test_small_objects_are_removed_and_holes_filled():
    labels = np.ones((60, 60), np.uint8)
    labels[10:30, 10:30] = 2
    labels[18:22, 18:22] = 1  # a hole in the square
    labels[50:52, 50:52] = 2  # a 4-pixel speck
    labels[0:6, 40:46] = 2  # touches the border: not a hole, a 36-pixel object
    filled = segment_objects(labels, 2, min_size=5, split=False)
    assert filled.max() == 2
    assert (filled[18:22, 18:22] > 0).all()
    assert (filled[50:52, 50:52] == 0).all()
    kept = segment_objects(labels, 2, min_size=0, split=False, fill_holes=False)
    assert kept.max() == 3 and (kept[18:22, 18:22] == 0).all()


def test_an_absent_class_gives_no_objects():
    instances = segment_objects(np.ones((20, 20), np.uint8), 2)
    assert instances.shape == (20, 20) and instances.dtype == np.int32 and instances.max() == 0


@pytest.mark.parametrize(
    "data, kwargs, error, match",
    [
        (np.ones((5, 5, 2), np.float32), {"class_label": 3}, SettingsError, "class_label 3"),
        (np.ones((5, 5), np.uint8), {"class_label": 0}, SettingsError, "class_label"),
        (np.ones((5, 5), np.uint8), {"class_label": 1, "min_distance": 0}, SettingsError, "min_distance"),
        (np.ones((5, 5), np.uint8), {"class_label": 1, "min_size": -1}, SettingsError, "min_size"),
        (np.ones((5, 5), np.uint8), {"class_label": 1, "threshold": 0.5}, SettingsError, "threshold"),
        (np.ones((5, 5, 2), np.float32), {"class_label": 1, "threshold": 2}, SettingsError, "threshold"),
        (np.ones((5, 5), np.float32), {"class_label": 1}, ImageError, "integer"),
        (np.ones((5, 5, 2), np.uint8), {"class_label": 1}, ImageError, "float"),
        (np.ones(5, np.uint8), {"class_label": 1}, ImageError, "shape"),
    ],
)
def test_bad_input_is_refused_with_a_seg_error(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        segment_objects(data, **kwargs)
    assert issubclass(error, SegError)


# --------------------------------------------------------------------------- measurements

BASE_COLUMNS = [
    "label",
    "area",
    "centroid_y",
    "centroid_x",
    "bbox_top",
    "bbox_left",
    "bbox_bottom",
    "bbox_right",
    "perimeter",
    "equivalent_diameter",
    "eccentricity",
    "solidity",
]


def test_measurements_of_known_shapes():
    instances = np.zeros((50, 60), np.int32)
    instances[10:20, 5:25] = 1  # 10 x 20 rectangle
    instances[30:40, 40:50] = 2  # 10 x 10 square
    table = measure_objects(instances)
    assert list(table.columns) == BASE_COLUMNS
    assert table["label"].tolist() == [1, 2]
    assert table["area"].tolist() == [200, 100]
    assert table[["centroid_y", "centroid_x"]].to_numpy().tolist() == [[14.5, 14.5], [34.5, 44.5]]
    assert table.loc[0, ["bbox_top", "bbox_left", "bbox_bottom", "bbox_right"]].tolist() == [10, 5, 20, 25]
    assert table["solidity"].tolist() == [1.0, 1.0]
    assert table.loc[1, "eccentricity"] == pytest.approx(0.0, abs=1e-6)
    assert table.loc[0, "eccentricity"] > 0.8
    assert table.loc[1, "equivalent_diameter"] == pytest.approx(np.sqrt(4 * 100 / np.pi))
    assert table.loc[1, "perimeter"] == pytest.approx(36, abs=2)
    assert table.attrs["units"]["area"] == "px2" and table.attrs["units"]["perimeter"] == "px"


def test_physical_units_are_named_in_the_columns():
    instances = np.zeros((40, 40), np.int32)
    instances[5:15, 5:15] = 1
    table = measure_objects(instances, pixel_size=0.25, unit="um")
    assert table.loc[0, "area_um2"] == pytest.approx(100 * 0.25**2)
    assert table.loc[0, "centroid_y_um"] == pytest.approx(9.5 * 0.25)
    assert table.loc[0, "perimeter_um"] == pytest.approx(table.loc[0, "perimeter"] * 0.25)
    assert table.loc[0, "equivalent_diameter_um"] == pytest.approx(table.loc[0, "equivalent_diameter"] * 0.25)
    assert table.attrs["units"]["area_um2"] == "um2" and table.attrs["units"]["centroid_x_um"] == "um"
    assert "area_nm2" in measure_objects(instances, pixel_size=2, unit="nm").columns


def test_intensity_per_channel_and_class_probability():
    instances = np.zeros((20, 20), np.int32)
    instances[2:6, 2:6] = 1
    instances[10:18, 10:18] = 2
    image = np.zeros((20, 20, 2), np.uint8)
    image[..., 0] = np.arange(20)[None, :]  # column index
    image[..., 1] = 7
    proba = np.zeros((20, 20, 3), np.float32)
    proba[..., 2] = 0.9
    proba[10:18, 10:14, 2] = 0.5
    table = measure_objects(instances, image=image, proba=proba, class_label=3)
    assert table["intensity_min_c0"].tolist() == [2, 10]
    assert table["intensity_max_c0"].tolist() == [5, 17]
    assert table["intensity_mean_c0"].tolist() == [3.5, 13.5]
    assert table["intensity_mean_c1"].tolist() == [7, 7]
    assert table["probability_mean"].tolist() == pytest.approx([0.9, 0.7])
    grey = measure_objects(instances, image=image[..., 0])
    assert grey["intensity_mean_c0"].tolist() == [3.5, 13.5]


def test_sparse_label_values_are_measured_without_a_slot_per_value():
    import tracemalloc

    instances = np.zeros((40, 40), np.int64)
    instances[2:6, 2:6] = 2**40
    instances[20:30, 20:30] = 7
    tracemalloc.start()
    table = measure_objects(instances)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert table["label"].tolist() == [7, 2**40] and table["area"].tolist() == [100, 16]
    assert peak < 50e6


def test_no_objects_give_the_same_columns():
    full = measure_objects(np.eye(8, dtype=np.int32), image=np.ones((8, 8, 2)), pixel_size=1.0)
    empty = measure_objects(np.zeros((8, 8), np.int32), image=np.ones((8, 8, 2)), pixel_size=1.0)
    assert len(empty) == 0 and len(full) == 1
    assert list(empty.columns) == list(full.columns)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"instances": np.zeros((4, 4), np.float32)}, ImageError, "integer"),
        ({"instances": -np.ones((4, 4), np.int32)}, ImageError, "negative"),
        ({"instances": np.zeros((4, 4), np.int32), "image": np.zeros((5, 4))}, ImageError, "size"),
        ({"instances": np.zeros((4, 4), np.int32), "proba": np.zeros((4, 4, 2))}, SettingsError, "class_label"),
        ({"instances": np.zeros((4, 4), np.int32), "pixel_size": 0}, SettingsError, "pixel_size"),
        ({"instances": np.zeros((4, 4), np.int32), "pixel_size": 1, "unit": "m/s"}, SettingsError, "unit"),
    ],
)
def test_bad_measurement_input_is_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        measure_objects(**kwargs)


@pytest.mark.parametrize("count, dtype", [(300, np.uint16), (70_000, np.uint32)])
def test_instance_tiff_is_16_bit_unless_more_objects(count, dtype):
    instances = np.arange(count, dtype=np.int32).reshape(1, -1) + 1
    read = tifffile.imread(io.BytesIO(instance_tiff_bytes(instances)))
    assert read.dtype == dtype
    np.testing.assert_array_equal(read, instances)


# --------------------------------------------------------------------------- tiled == untiled


TILE = 64


def seam_disks_scene():
    """A 256 x 256 uint8 image of bright disks (radius 9) with touching pairs centred on the
    64-px tile seams, plus random ones, and a quick model ("background", "disk") trained on a
    few per cent of its pixels. Returns (image, model, number of disks drawn)."""
    import dataclasses

    from seg.forest import ForestSettings
    from seg.model import train

    rng = np.random.default_rng(5)
    seams = [(64 + dy, 64 * k + dx) for k in (1, 2, 3) for dy, dx in ((0, -7), (0, 7))]
    seams += [(64 * k + dy, 128 + dx) for k in (2, 3) for dy, dx in ((-6, 0), (6, 0))]
    centres = seams + [tuple(rng.uniform(10, 240, 2)) for _ in range(12)]
    truth = disks((256, 256), centres, 9)
    image = np.clip(60 + 120 * (truth == 2) + rng.normal(0, 15, truth.shape), 0, 255).astype(np.uint8)
    sparse = np.where(rng.random(truth.shape) < 0.03, truth, 0).astype(np.uint8)
    forest = dataclasses.replace(ForestSettings(), n_estimators=6, random_state=0)
    return image, train(image, sparse, None, ["background", "disk"], forest=forest), len(centres)


def crossing_seams(top, left, bottom, right, tile: int = TILE) -> int:
    """How many bounding boxes (bottom/right exclusive) span more than one tile."""
    top, left, bottom, right = (np.asarray(v, np.int64) for v in (top, left, bottom, right))
    return int(((top // tile != (bottom - 1) // tile) | (left // tile != (right - 1) // tile)).sum())


@pytest.mark.slow
def test_objects_from_a_tiled_prediction_equal_untiled():
    """Touching disks straddling tile seams are the same objects (and the same split) as untiled."""
    from seg.tiling import predict_proba_tiled

    image, model, drawn = seam_disks_scene()
    untiled = segment_objects(model.predict_proba(image), 2)
    tiled = segment_objects(predict_proba_tiled(model, image, tile=TILE), 2)
    np.testing.assert_array_equal(tiled, untiled)
    table = measure_objects(untiled)
    assert crossing_seams(table["bbox_top"], table["bbox_left"], table["bbox_bottom"], table["bbox_right"]) >= 8
    assert untiled.max() >= drawn - 4


def test_objects_csv_has_image_frame_object_and_the_same_header_when_empty():
    import csv as csv_module

    from seg.objects import object_rows, objects_csv

    instances = np.zeros((30, 30), np.int32)
    instances[2:8, 2:8] = 4
    table = measure_objects(instances, pixel_size=0.5)
    text = objects_csv(object_rows(table, image="=cmd.tif", frame=3), list(table.columns))
    rows = list(csv_module.DictReader(io.StringIO(text)))
    assert rows[0]["image"] == "'=cmd.tif"  # spreadsheet formulas are neutralised
    assert (rows[0]["frame"], rows[0]["object"], rows[0]["area"], rows[0]["area_um2"]) == ("3", "4", "36", "9.0")
    empty = measure_objects(np.zeros((30, 30), np.int32), pixel_size=0.5)
    header = objects_csv([], list(empty.columns))
    assert header.splitlines() == [text.splitlines()[0]]
    assert header.startswith("image,frame,object,area,")
