"""Tests of seg.measure: per-class areas, object counts and sizes, CSV export, size histograms."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from seg.errors import ImageError, SettingsError
from seg.measure import COLUMNS, FRAME_COLUMNS, measure, measure_stack, object_sizes, rows_to_csv, size_histogram

NAMES = ["membrane", "cell"]


def _scene() -> np.ndarray:
    """10x10, fully labelled: class 2 background, two class-1 squares (9 and 4 px), one class-3 (2 px)."""
    labels = np.full((10, 10), 2, np.uint8)
    labels[1:4, 1:4] = 1  # 9 px
    labels[6:8, 6:8] = 1  # 4 px
    labels[0, 8:10] = 3  # 2 px
    return labels


def test_measure_counts_pixels_objects_and_sizes_exactly():
    rows = measure(_scene(), ["membrane", "cell", "vesicle"])
    assert [row["class"] for row in rows] == ["membrane", "cell", "vesicle"]
    assert list(rows[0]) == list(COLUMNS)
    membrane, cell, vesicle = rows
    assert membrane["label"] == 1 and membrane["pixels"] == 13 and membrane["objects"] == 2
    assert membrane["mean_object_size"] == 6.5 and membrane["median_object_size"] == 6.5
    assert membrane["max_object_size"] == 9
    assert cell["pixels"] == 100 - 13 - 2 and cell["objects"] == 1
    assert vesicle["pixels"] == 2 and vesicle["objects"] == 1 and vesicle["max_object_size"] == 2
    assert sum(row["area_fraction"] for row in rows) == pytest.approx(1.0)
    assert membrane["area_fraction"] == pytest.approx(0.13)


def test_diagonal_neighbours_are_one_object():
    labels = np.zeros((4, 4), np.uint8)
    labels[0, 0] = labels[1, 1] = labels[2, 2] = 1  # touching only at corners
    labels[3, 0] = 1
    assert object_sizes(labels, 1).tolist() == [3, 1]
    assert measure(labels, ["a"])[0]["objects"] == 2


def test_absent_class_has_zeros_and_unlabelled_pixels_are_not_a_class():
    labels = np.zeros((5, 5), np.uint16)
    labels[0, :] = 1
    rows = measure(labels, NAMES)
    assert len(rows) == 2
    assert rows[1] == {
        "class": "cell",
        "label": 2,
        "pixels": 0,
        "area_fraction": 0.0,
        "objects": 0,
        "mean_object_size": 0.0,
        "median_object_size": 0.0,
        "max_object_size": 0,
    }
    assert rows[0]["area_fraction"] == pytest.approx(0.2)
    assert object_sizes(labels, 2).size == 0


def test_labels_beyond_the_named_classes_are_still_reported():
    labels = np.ones((3, 3), np.int32)
    labels[0, 0] = 7
    rows = measure(labels, NAMES)
    assert [(row["class"], row["label"], row["pixels"]) for row in rows] == [
        ("membrane", 1, 8),
        ("cell", 2, 0),
        ("class 7", 7, 1),
    ]


def test_values_are_plain_python_numbers():
    row = measure(_scene(), NAMES)[0]
    assert all(type(v) in (int, float, str) for v in row.values())


def test_measure_stack_gives_one_block_of_rows_per_frame():
    stack = np.stack([_scene(), np.full((10, 10), 2, np.uint8)])
    rows = measure_stack(stack, NAMES + ["vesicle"])
    assert [row["frame"] for row in rows] == [0, 0, 0, 1, 1, 1]
    assert list(rows[0])[0] == "frame"
    assert rows[3]["pixels"] == 0 and rows[4]["pixels"] == 100 and rows[4]["objects"] == 1
    assert [row["frame"] for row in measure_stack(_scene(), NAMES)] == [0, 0, 0]
    assert measure(_scene(), NAMES, frame=4)[0]["frame"] == 4


def test_csv_parses_back_and_neutralises_formula_names():
    names = ["=cmd()", "+1", "normal, with comma", '-quote"d', "@sum(A1)"]
    labels = np.repeat(np.arange(1, 6, dtype=np.uint8), 2)[None]
    text = rows_to_csv(measure_stack(labels, names))
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 5 and list(parsed[0]) == ["frame", *COLUMNS]
    assert [row["class"] for row in parsed] == ["'=cmd()", "'+1", "normal, with comma", "'-quote\"d", "'@sum(A1)"]
    assert parsed[0]["pixels"] == "2" and float(parsed[0]["area_fraction"]) == pytest.approx(0.2)
    for line in text.splitlines()[1:]:
        assert not line.startswith(("=", "+", "-", "@"))


def test_csv_of_no_rows_is_empty_and_missing_cells_stay_empty():
    assert rows_to_csv([]) == ""
    assert rows_to_csv([], columns=FRAME_COLUMNS) == "frame," + ",".join(COLUMNS) + "\n"
    frame_rows = measure_stack(_scene(), NAMES)
    assert rows_to_csv(frame_rows, columns=FRAME_COLUMNS) == rows_to_csv(frame_rows)
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv([{"a": 1}, {"a": 2, "b": "x"}]))))
    assert parsed == [{"a": "1", "b": ""}, {"a": "2", "b": "x"}]


def test_size_histogram_uses_log_spaced_bins():
    sizes = np.array([1, 2, 10, 100, 1000, 1000])
    edges, counts = size_histogram(sizes, bins=3)
    assert np.allclose(edges, [1, 10, 100, 1000])
    assert counts.tolist() == [2, 1, 3] and counts.sum() == sizes.size
    edges, counts = size_histogram([], bins=4)
    assert len(edges) == 5 and counts.tolist() == [0, 0, 0, 0]
    edges, counts = size_histogram([7, 7], bins=2)
    assert counts.sum() == 2
    with pytest.raises(SettingsError):
        size_histogram(sizes, bins=0)
    with pytest.raises(SettingsError):
        size_histogram([0, 5])


@pytest.mark.parametrize("bad", [np.zeros((3, 3), np.float32), np.zeros((3,), np.uint8), np.full((2, 2), -1)])
def test_bad_labels_raise_image_error(bad):
    with pytest.raises(ImageError):
        measure(bad, NAMES)


def test_a_single_string_is_not_a_list_of_class_names():
    with pytest.raises(SettingsError):
        measure(_scene(), "membrane")


def test_real_segmentation_counts_match_scipy(isbi_dir):
    from PIL import Image
    from scipy import ndimage

    truth = np.asarray(Image.open(isbi_dir / "label" / "00.png"))
    labels = np.where(truth < 128, 1, 2).astype(np.uint8)  # 0 = membrane -> class 1, 255 = cell -> 2
    rows = measure(labels, NAMES)
    _, expected_cells = ndimage.label(labels == 2, structure=np.ones((3, 3)))
    assert rows[1]["objects"] == expected_cells > 10
    assert rows[0]["pixels"] + rows[1]["pixels"] == labels.size


@pytest.mark.parametrize("value", [2**16, 2**31 - 1])
def test_a_huge_label_is_refused_before_any_per_label_count(value):
    """One label-image check (seg.render's): a stray 2**31 - 1 cannot make a 16 GB bincount."""
    labels = np.zeros((4, 4), np.int64)
    labels[1, 2] = value
    for call in (lambda: measure(labels, NAMES), lambda: measure_stack(labels[None], NAMES)):
        with pytest.raises(ImageError, match=f"contains label {value}; at most 65535 classes"):
            call()


def test_labels_are_refused_alike_by_measure_and_the_overlay():
    from seg.render import colorize

    for bad in (np.full((3, 3), -1, np.int32), np.zeros((3, 3), np.float32)):
        with pytest.raises(ImageError) as measured:
            measure(bad, NAMES)
        with pytest.raises(ImageError) as drawn:
            colorize(bad, ["#ff0000"])
        assert str(measured.value) == str(drawn.value)
