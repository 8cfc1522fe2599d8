"""Engine pieces behind the panels on large frames and the canvas marks: boxes drawn on a
picture, uint8 probabilities of the tiled path, label-next on a viewport's grid, tiled strokes
read from training's cache, uint8 probabilities in object measurements."""

from __future__ import annotations

import numpy as np
import pytest

from seg.errors import ImageError, SettingsError
from seg.evaluate import estimate_accuracy, label_next
from seg.model import train
from seg.render import draw_boxes
from seg.tiling import apply_tiled, quantize_probabilities
from seg.viewport import Viewport
from tests.unit.test_evaluate import blob_scribbles, two_blobs


def test_boxes_are_outlined_inside_and_clipped_to_the_picture():
    rgb = np.zeros((20, 30, 3), np.uint8)
    out = draw_boxes(rgb, [(2, 3, 10, 12)], "#ff0000", thickness=2)
    red = out[..., 0] == 255
    expected = np.zeros((20, 30), bool)
    expected[2:10, 3:12] = True
    expected[4:8, 5:10] = False  # a 2-pixel frame inside the box
    assert np.array_equal(red, expected)
    assert not rgb.any()  # a new array
    # Partly off the picture: only the visible sides, no edge along the picture's border.
    out = draw_boxes(rgb, [(-5.0, 20.5, 8.2, 40.0)], (0, 255, 0), thickness=1)
    green = out[..., 1] == 255
    assert green[8, 20:].all() and green[:9, 20].all()  # bottom and left sides
    assert not green[0, 21:].any() and not green[:8, 29].any()  # top and right are off the picture
    assert not draw_boxes(rgb, [(30, 40, 50, 60)], "#ffffff").any()  # wholly outside: nothing


def test_uint8_probabilities_of_the_tiled_path_are_the_float_ones_rounded():
    image, truth = two_blobs(size=120)
    model = train(image, blob_scribbles(truth))
    labels, proba = apply_tiled(model, image, tile=48, proba=True)
    labels8, proba8 = apply_tiled(model, image, tile=48, proba=True, proba_dtype=np.uint8)
    assert proba8.dtype == np.uint8 and proba8.nbytes * 4 == proba.nbytes
    assert np.array_equal(labels8, labels)
    assert np.array_equal(proba8, quantize_probabilities(proba))
    assert np.abs(proba8 / 255.0 - proba).max() <= 0.5 / 255 + 1e-6
    with pytest.raises(SettingsError, match="proba_dtype"):
        apply_tiled(model, image, proba=True, proba_dtype=np.float64)


def test_label_next_on_a_viewport_grid_gives_image_boxes():
    full = np.zeros((800, 1200), np.float32)
    full[420:470, 700:760] = 0.9
    view = Viewport.at(800, 1200, 1.5, (720.0, 440.0), max_side=300)  # a zoomed window: 200 x 200 px
    rows, cols = view.display_rows(), view.display_columns()
    [region] = label_next(full[np.ix_(rows, cols)], count=1, window=60, shape=full.shape, grid=(rows, cols))
    exact = label_next(full, count=1, window=60)[0]
    assert abs(region.row0 - exact.row0) <= 2 and abs(region.col0 - exact.col0) <= 2
    assert view.top <= region.row0 < region.row1 <= view.top + view.height
    assert abs((region.row1 - region.row0) - 60) <= 2
    with pytest.raises(ImageError, match="grid"):
        label_next(full[:10, :10], grid=(np.arange(9), np.arange(10)))


def test_tiled_strokes_come_from_the_training_cache_and_match_whole_features():
    from seg.features.tiles import TileFeatures
    from seg.images import Normalization

    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    model = train(image, labels)
    tiles = TileFeatures(image, model.feature_settings, Normalization(), tile=32)
    tiles.labelled_samples(labels)  # what training asked for
    computed = tiles.computed
    direct = estimate_accuracy(image, labels, features=[model.features(image)])
    tiled = estimate_accuracy(image, labels, features=[tiles])
    assert tiles.computed == computed  # no tile computed again
    assert tiled.per_class["pixels"].tolist() == direct.per_class["pixels"].tolist()
    assert np.array_equal(tiled.group_boxes, direct.group_boxes)
    assert np.array_equal(tiled.confusion, direct.confusion)


def test_an_unlabelled_sample_replaces_the_drawn_one():
    image, truth = two_blobs()
    labels = blob_scribbles(truth)
    model = train(image, labels)
    proba = model.predict_proba(image)
    sample = proba[labels == 0]
    given = estimate_accuracy(image, labels, unlabelled=sample)
    drawn = estimate_accuracy(image, labels, proba=[proba])
    assert given.accuracy == pytest.approx(drawn.accuracy, abs=0.01)
    sure = np.tile([[0.0, 1.0]], (1000, 1)).astype(np.float32)  # every pixel sure of class 2
    assert estimate_accuracy(image, labels, unlabelled=sure).accuracy != given.accuracy
    with pytest.raises(SettingsError, match="unlabelled"):
        estimate_accuracy(image, labels, unlabelled=np.zeros((5, 3), np.float32))


def test_object_probability_from_uint8_is_the_float_mean():
    from seg.objects import measure_objects

    instances = np.zeros((20, 20), np.int32)
    instances[2:8, 2:8] = 1
    instances[10:18, 10:18] = 2
    proba = np.random.default_rng(0).random((20, 20, 2)).astype(np.float32)
    exact = measure_objects(instances, proba=proba, class_label=2)["probability_mean"]
    quantized = measure_objects(instances, proba=quantize_probabilities(proba), class_label=2)["probability_mean"]
    np.testing.assert_allclose(quantized, exact, atol=0.5 / 255 + 1e-6)


def test_imported_label_images_round_trip_in_the_annotation_file():
    import base64
    import json
    import zlib

    from seg.errors import AnnotationError
    from seg.strokes import Annotations, Stroke

    mask = np.zeros((30, 40), np.uint8)
    mask[5:15, 5:35] = 1
    mask[20:28, 10:20] = 2
    stroke = Stroke("path", 2, [(8.0, 10.0), (30.0, 10.0)], 3.0)
    plain = Annotations(["a", "b"], ["#ff0000", "#00ff00"], (2, 30, 40), [stroke])
    assert "label_images" not in json.loads(plain.to_json())  # files without imports are as before
    annotations = Annotations(["a", "b"], ["#ff0000", "#00ff00"], (2, 30, 40), [stroke], label_images={1: mask})
    text = annotations.to_json()
    back = Annotations.from_json(text)
    assert list(back.label_images) == [1] and np.array_equal(back.label_images[1], mask)
    assert np.array_equal(back.labels(1), mask)  # the stroke is on frame 0
    merged = back.labels(0)
    assert merged[10, 20] == 2 and merged[20, 15] == 0  # frame 0: the stroke only
    stack = back.label_stack()
    assert np.array_equal(stack[1], mask) and stack[0, 10, 20] == 2
    # A stroke wins over the imported label where both label a pixel.
    over = Annotations(["a", "b"], ["#ff0000", "#00ff00"], (1, 30, 40), [stroke], label_images={0: mask})
    assert over.labels(0)[10, 20] == 2 and over.labels(0)[6, 6] == 1

    document = json.loads(text)
    bomb = base64.b64encode(zlib.compress(bytes(30 * 40 * 1000))).decode()
    for entry, message in (
        ({"frame": 1, "dtype": "uint8", "data": bomb}, "exactly 40x30|exactly 30x40"),
        ({"frame": 1, "dtype": "float32", "data": ""}, "dtype"),
        ({"frame": 1, "dtype": "uint8", "data": "not base64!"}, "base64"),
        ({"frame": 5, "dtype": "uint8", "data": document["label_images"][0]["data"]}, "frame"),
        ({"frame": 1, "dtype": "uint8", "data": document["label_images"][0]["data"], "x": 1}, "x"),
    ):
        hostile = dict(document, label_images=[entry])
        with pytest.raises(AnnotationError, match=message):
            Annotations.from_json(json.dumps(hostile))
    too_many = mask.copy()
    too_many[0, 0] = 3
    with pytest.raises(AnnotationError, match="label 3"):
        Annotations(["a", "b"], ["#ff0000", "#00ff00"], (1, 30, 40), [], label_images={0: too_many})


def test_annotations_too_large_to_load_again_are_never_written(monkeypatch):
    import seg.strokes.annotations as module
    from seg.errors import AnnotationError
    from seg.strokes import Annotations, check_label_images

    blobs = np.zeros((300, 400), np.uint8)
    blobs[50:150, 100:300] = 1
    noise = np.random.default_rng(0).integers(1, 3, (300, 400), dtype=np.uint8)
    check_label_images({0: blobs, 1: noise})  # both fit the real limit
    monkeypatch.setattr(module, "MAX_LABEL_IMAGES_TEXT", 5_000)
    check_label_images({0: blobs})  # a blob mask compresses to a few hundred bytes
    with pytest.raises(AnnotationError, match="does not compress"):
        check_label_images({0: blobs, 1: noise})
    # and a file over the read limit is refused when written, not when read back
    monkeypatch.setattr(module, "MAX_JSON_BYTES", 5_000)
    annotations = Annotations(["a", "b"], ["#ff0000", "#00ff00"], (2, 300, 400), [], label_images={1: noise})
    with pytest.raises(AnnotationError, match="could not be loaded again"):
        annotations.to_json()
