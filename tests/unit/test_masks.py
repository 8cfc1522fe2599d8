"""Importing an existing label/mask image as scribbles (seg.strokes.masks)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image

from seg.errors import AnnotationError, ImageError
from seg.strokes import MAX_MASK_VALUES, mask_to_labels, mask_values, read_mask


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_grey_mask_values_map_to_classes():
    mask = np.zeros((20, 30), np.uint8)
    mask[5:10, 5:10] = 255
    mask[12:15] = 128
    read = read_mask(png(mask), (20, 30))
    assert [(v.value, v.pixels) for v in mask_values(read)] == [(0, 600 - 25 - 90), (128, 90), (255, 25)]
    labels = mask_to_labels(read, {255: 2, 128: 1}, n_classes=2)
    assert labels.dtype == np.uint16
    assert np.array_equal(labels, np.select([mask == 255, mask == 128], [2, 1], 0))


def test_colour_masks_map_by_colour():
    mask = np.zeros((10, 10, 3), np.uint8)
    mask[:5] = (230, 159, 0)
    mask[5:, :3] = (0, 114, 178)
    read = read_mask(png(mask), (10, 10))
    values = mask_values(read)
    assert [v.text for v in values] == ["#000000", "#0072b2", "#e69f00"]
    labels = mask_to_labels(read, {(230, 159, 0): 1, (0, 114, 178): 2}, n_classes=2)
    assert (labels[:5] == 1).all() and (labels[5:, :3] == 2).all() and (labels[5:, 3:] == 0).all()


def test_sixteen_bit_tiff_labels():
    mask = np.zeros((8, 9), np.uint16)
    mask[2:4] = 1000
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, mask)
    labels = mask_to_labels(read_mask(buffer.getvalue(), (8, 9)), {1000: 3}, n_classes=3)
    assert np.array_equal(labels, np.where(mask == 1000, 3, 0))


def test_refusals_name_the_problem():
    with pytest.raises(AnnotationError, match="is 30×20 pixels but the image is 40×20"):
        read_mask(png(np.zeros((20, 30), np.uint8)), (20, 40))
    photo = np.arange(20 * 30, dtype=np.uint16).reshape(20, 30)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, photo)
    with pytest.raises(AnnotationError, match=f"more than {MAX_MASK_VALUES}"):
        read_mask(buffer.getvalue(), (20, 30))
    with pytest.raises(ImageError):
        read_mask(b"not an image", (20, 30))
    with pytest.raises(AnnotationError, match="mapped to 5"):
        mask_to_labels(np.zeros((3, 3), np.uint8), {0: 5}, n_classes=2)
