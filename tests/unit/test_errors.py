"""seg.errors.describe_value: the one describer of bad values in error messages."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from seg.errors import AnnotationError, ModelFileError, SettingsError, describe_value


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
