"""seg.errors.describe_value and is_whole_number: the one describer of bad values and the one whole-number check."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import seg
from seg.errors import AnnotationError, ModelFileError, SettingsError, describe_value, is_whole_number
from seg.tiling import check_tile


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "'abc'"),
        (12, "12"),
        (None, "None"),
        ([1, 2, 3, 4, 5, 6], "[1, 2, 3, 4, ...]"),
        ({"a": [[[1]]]}, "{'a': [[...]]}"),
        (10**5000, "<int>"),  # repr refuses integers over 4300 digits
    ],
    ids=["str", "int", "None", "long list", "deep dict", "huge int"],
)
def test_describe_value_is_repr_like_and_short(value, expected):
    assert describe_value(value) == expected


def test_describe_value_of_huge_values_is_bounded_in_length_and_time():
    for value in ["x" * 50_000_000, list(range(2_000_000)), np.zeros((3000, 3000))]:
        start = time.perf_counter()
        text = describe_value(value)
        assert len(text) <= 80 and time.perf_counter() - start < 0.5, text


def test_strokes_colours_and_model_files_describe_bad_values_alike():
    from seg.persist.manifest import parse_manifest
    from seg.render import parse_color
    from seg.strokes import normalize_color

    junk = list(range(1000))
    shown = describe_value(junk)
    with pytest.raises(SettingsError) as settings_error:
        parse_color(junk)
    with pytest.raises(AnnotationError) as annotation_error:
        normalize_color(junk)
    with pytest.raises(ModelFileError) as model_error:
        parse_manifest(json.dumps({"format": junk}).encode())
    for error in (settings_error, annotation_error, model_error):
        assert shown in str(error.value), str(error.value)


@pytest.mark.parametrize(
    ("value", "low", "high", "expected"),
    [
        (3, 1, 5, True),
        (np.int64(3), 1, 5, True),
        (np.uint8(0), 0, None, True),
        (1, 1, 1, True),  # bounds are inclusive
        (0, 1, None, False),
        (6, None, 5, False),
        (3.0, None, None, False),  # a float is refused even when it is integral
        ("3", None, None, False),
        (True, None, None, False),  # bool is an int subclass in Python
        (np.bool_(True), None, None, False),
        (None, None, None, False),
    ],
)
def test_is_whole_number(value, low, high, expected) -> None:
    assert is_whole_number(value, low, high) is expected


def test_whole_number_refusals_name_the_value() -> None:
    # every "whole number" check in the engine goes through is_whole_number: bools and floats are refused alike
    with pytest.raises(SettingsError, match="whole number"):
        seg.ForestSettings(n_estimators=True)
    with pytest.raises(SettingsError, match="whole number"):
        seg.FeatureSettings(num_sigma=2.0)
    with pytest.raises(SettingsError, match="tile size"):
        check_tile(np.bool_(True))


@pytest.mark.parametrize(
    ("read", "data", "fragments"),
    [
        (
            seg.FeatureSettings.from_dict,
            {**seg.FeatureSettings().to_dict(), "surprise": 1},
            ["unknown key", "surprise"],
        ),
        (seg.ForestSettings.from_dict, {"n_estimators": 10}, ["Forest settings", "missing key", "max_depth"]),
        (seg.Normalization.from_dict, {"mode": "percentile", "x": 1}, ["Normalization", "unknown key", "'x'"]),
        (seg.ForestSettings.from_dict, [1, 2], ["JSON object", "list"]),
    ],
)
def test_settings_files_name_missing_and_unknown_keys(read, data, fragments) -> None:
    with pytest.raises(SettingsError) as caught:
        read(data)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_key_listing_is_bounded_for_hostile_objects() -> None:
    hostile = {f"key{i}" * 1000: i for i in range(100_000)}
    with pytest.raises(SettingsError) as caught:
        seg.ForestSettings.from_dict(hostile)
    assert len(str(caught.value)) < 1000
