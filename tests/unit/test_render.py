"""Tests of seg.render: colours, display conversion, resizing, overlays, encoders and files."""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from seg import render
from seg.errors import ImageError, SegError, SettingsError

# ---------------------------------------------------------------- palette and colour parsing


def test_palette_is_okabe_ito_first_then_distinct_valid_colours():
    assert render.PALETTE[:7] == ("#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7")
    assert len(render.PALETTE) >= 12
    assert len(set(render.PALETTE)) == len(render.PALETTE)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in render.PALETTE)
    assert "#000000" not in render.PALETTE  # black is "unlabelled" in masks


def test_palette_colours_are_far_apart_in_rgb():
    rgb = np.array([render.parse_color(c) for c in render.PALETTE], float)
    distances = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 40


def test_color_for_cycles_through_the_palette():
    n = len(render.PALETTE)
    assert render.color_for(0) == render.PALETTE[0]
    assert render.color_for(n + 2) == render.PALETTE[2]
    assert render.default_colors(3) == list(render.PALETTE[:3])
    with pytest.raises(SettingsError):
        render.color_for(-1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#e69f00", (230, 159, 0)),
        ("#E69F00", (230, 159, 0)),
        ("  #e69f00 ", (230, 159, 0)),
        ("#f00", (255, 0, 0)),
        ("#00ff0080", (0, 255, 0)),
        ("rgb(1, 2, 3)", (1, 2, 3)),
        ("rgb(255,128,0)", (255, 128, 0)),
        ("RGBA(10, 20, 30, 0.5)", (10, 20, 30)),
        ("rgba(10,20,30,50%)", (10, 20, 30)),
        ("rgb(100%, 0%, 50%)", (255, 0, 128)),
        ("rgb(12.6, 0, 0)", (13, 0, 0)),
        ("#f00a", (255, 0, 0)),
        ("rgb(255 128 0 / 50%)", (255, 128, 0)),
        (" Red ", (255, 0, 0)),
        ("rebeccapurple", (102, 51, 153)),
    ],
)
def test_parse_color_accepts_the_forms_canvas_and_files_use(text, expected):
    assert render.parse_color(text) == expected


def test_named_colour_still_parses_after_pillow_resolved_it():
    # ImageColor.getrgb (ImageDraw with a named colour, anywhere in the process) caches the
    # (r, g, b) tuple in the table the parser looks names up in.
    from PIL import ImageColor

    ImageColor.getrgb("teal")
    assert render.parse_color("teal") == (0, 128, 128)
    assert render.parse_color("Teal ") == (0, 128, 128)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "reddish",
        "transparent",
        "hsl(0, 100%, 50%)",
        "rgb(1 2, 3)",
        "rgb(1,,2,3)",
        "#12",
        "#12345",
        "#gggggg",
        "rgb(1,2)",
        "rgb(256,0,0)",
        "rgb(-1,0,0)",
        "rgba(1,2,3,2)",
        "rgb(1,2,3,4,5)",
        "#e69f00; drop table",
        "rgb(" + "1" * 500 + ",0,0)",
        None,
        123,
        ["#fff"],
    ],
)
def test_parse_color_refuses_junk_with_a_settings_error(junk):
    with pytest.raises(SettingsError):
        render.parse_color(junk)


def test_normalize_color_gives_lowercase_hex():
    assert render.normalize_color("RGB(230, 159, 0)") == "#e69f00"
    assert render.normalize_color("#ABC") == "#aabbcc"


# ---------------------------------------------------------------- display conversion


def test_twelve_bit_image_in_uint16_uses_the_full_display_range():
    ramp = np.tile(np.arange(4096, dtype=np.uint16), (64, 1))  # values 0..4095: black if shown /65535
    rgb = render.to_display_rgb(ramp)
    assert rgb.shape == (64, 4096, 3) and rgb.dtype == np.uint8
    assert rgb.max() >= 250 and rgb.min() <= 5
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])
    assert np.all(np.diff(rgb[0, :, 0].astype(int)) >= 0)  # monotonic


def test_float_image_with_small_values_is_stretched():
    rng = np.random.default_rng(0)
    frame = (rng.random((50, 60, 1)) * 1e-3).astype(np.float32)
    rgb = render.to_display_rgb(frame)
    assert rgb.max() >= 250 and rgb.min() <= 5


def test_float_image_with_nan_and_inf_displays_without_warnings():
    frame = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    frame[0, 0], frame[0, 1], frame[0, 2] = np.nan, np.inf, -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = render.to_display_rgb(frame)
    assert rgb[0, 0, 0] == 0 and rgb[0, 1, 0] == 255 and rgb[0, 2, 0] == 0


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (np.zeros((8, 8), np.uint8), 0),
        (np.full((8, 8), 128, np.uint8), 128),
        (np.zeros((8, 8, 3), np.float32), 0),
        (np.full((8, 8), 0.5, np.float32), 128),
        (np.full((8, 8, 2), 65535, np.uint16), 255),
    ],
)
def test_constant_image_shows_on_its_dtype_scale_without_warnings(frame, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = render.to_display_rgb(frame)
    assert rgb.shape == (8, 8, 3)
    assert np.all(rgb == expected)


def test_sparse_bright_spots_are_not_lost_by_the_percentiles():
    frame = np.zeros((100, 100), np.uint16)
    frame[50, 50] = 1000  # one pixel in 10,000: both percentiles are 0
    rgb = render.to_display_rgb(frame)
    assert rgb[50, 50, 0] == 255 and rgb[0, 0, 0] == 0


def test_uint8_photograph_keeps_its_colours():
    rgb_in = np.zeros((10, 10, 3), np.uint8)
    rgb_in[:5] = (255, 0, 0)
    rgb_in[5:] = (0, 0, 255)
    assert np.array_equal(render.to_display_rgb(rgb_in), rgb_in)


def test_two_channels_show_as_magenta_and_green():
    frame = np.zeros((4, 4, 2), np.float32)
    frame[:2, :, 0] = 1.0  # channel 0 bright in the top half
    frame[:, :2, 1] = 1.0  # channel 1 bright in the left half
    rgb = render.to_display_rgb(frame)
    assert tuple(rgb[0, 3]) == (255, 0, 255)  # channel 0 only: magenta
    assert tuple(rgb[3, 0]) == (0, 255, 0)  # channel 1 only: green
    assert tuple(rgb[0, 0]) == (255, 255, 255)


def test_channel_selection_picks_grey_or_three_channels():
    frame = np.zeros((4, 4, 5), np.uint16)
    for c in range(5):
        frame[..., c] = np.arange(16).reshape(4, 4) * (c + 1)
    frame[0, 0, 4] = 60000
    grey = render.to_display_rgb(frame, channels=4)
    assert grey[0, 0].tolist() == [255, 255, 255]
    picked = render.to_display_rgb(frame, channels=[4, 0, 1])
    assert np.array_equal(picked[..., 0], grey[..., 0])
    assert np.array_equal(picked[..., 1], render.to_display_rgb(frame, channels=0)[..., 0])
    with pytest.raises(SettingsError, match="channel 7"):
        render.to_display_rgb(frame, channels=7)
    with pytest.raises(SettingsError):
        render.to_display_rgb(frame, channels=[0, 1, 2, 3])


def test_more_than_three_channels_show_the_first_three():
    frame = np.zeros((4, 4, 4), np.uint8)
    frame[..., 3] = 255  # an alpha-like 4th channel must not leak in
    frame[0, 0, :3] = 200
    rgb = render.to_display_rgb(frame)
    assert rgb[1, 1].tolist() == [0, 0, 0] and rgb[0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("bad", [np.zeros((2, 2, 2, 2)), np.zeros((0, 5)), np.array([["a"]])])
def test_undisplayable_frames_raise_image_error(bad):
    with pytest.raises(ImageError):
        render.to_display_rgb(bad)


# ---------------------------------------------------------------- sizes and resizing


@pytest.mark.parametrize(
    ("shape", "max_side", "expected"),
    [
        ((4000, 2000), 1000, (1000, 500)),
        ((300, 200), 1000, (300, 200)),
        ((10000, 3), 100, (100, 1)),
        ((1024, 1024), 1024, (1024, 1024)),
        ((999, 1001), 500, (499, 500)),
    ],
)
def test_display_size_keeps_aspect_and_never_enlarges(shape, max_side, expected):
    assert render.display_size(*shape, max_side) == expected


def test_display_size_refuses_nonsense():
    with pytest.raises(SettingsError):
        render.display_size(10, 10, 0)
    with pytest.raises(ImageError):
        render.display_size(0, 10, 100)


def test_resize_labels_picks_the_pixel_under_each_display_pixel_centre():
    labels = np.arange(64, dtype=np.uint16).reshape(8, 8)
    small = render.resize_labels(labels, (2, 2))  # 4x: centres at image pixels 2 and 6
    assert small.dtype == np.uint16
    assert small.tolist() == [[labels[2, 2], labels[2, 6]], [labels[6, 2], labels[6, 6]]]


def test_resize_labels_matches_the_stroke_coordinate_mapping():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, (37, 53), dtype=np.uint8)
    height, width = 15, 22
    out = render.resize_labels(labels, (height, width))
    for i in range(height):
        for j in range(width):
            # image = display * (natural / display), at the display pixel's centre
            y, x = (i + 0.5) * 37 / height, (j + 0.5) * 53 / width
            assert out[i, j] == labels[int(y), int(x)]


def test_resize_labels_invents_no_values_and_handles_stacks():
    labels = np.array([[1, 3], [2, 0]], np.uint8)
    big = render.resize_labels(labels, (6, 4))
    assert set(np.unique(big)) == {0, 1, 2, 3}
    assert big[:3, :2].tolist() == [[1, 1]] * 3
    stack = render.resize_labels(np.stack([labels, labels + 1]), (6, 4))
    assert stack.shape == (2, 6, 4) and np.array_equal(stack[1], big + 1)
    assert render.resize_labels(labels, (2, 2)) is labels


def test_resize_rgb_averages_when_shrinking():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[::2, ::2] = 200  # one pixel in four
    small = render.resize_rgb(rgb, (2, 2))
    assert small.shape == (2, 2, 3) and np.all(small == 50)
    assert render.resize_rgb(rgb, (8, 6)).shape == (8, 6, 3)
    assert render.resize_rgb(rgb, (4, 4)) is rgb


# ---------------------------------------------------------------- colouring and blending

COLORS = ["#ff0000", "#00ff00", "rgb(0, 0, 255)"]


def test_colorize_paints_classes_and_leaves_unlabelled_black():
    labels = np.array([[0, 1], [2, 3]], np.uint8)
    rgb = render.colorize(labels, COLORS)
    assert rgb.tolist() == [[[0, 0, 0], [255, 0, 0]], [[0, 255, 0], [0, 0, 255]]]


def test_colorize_gives_classes_without_a_colour_the_default_palette():
    rgb = render.colorize(np.array([[5]], np.int64), COLORS)
    assert tuple(rgb[0, 0]) == render.parse_color(render.color_for(4))


def test_blend_leaves_unlabelled_pixels_unchanged_and_tints_labelled_ones():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 4, (32, 32)).astype(np.uint8)
    out = render.blend(image, labels, COLORS, 0.5)
    assert out.dtype == np.uint8 and out.shape == image.shape
    unlabelled = labels == 0
    assert np.array_equal(out[unlabelled], image[unlabelled])
    colours = render.colorize(labels, COLORS).astype(float)
    expected = image * 0.5 + colours * 0.5
    assert np.abs(out[~unlabelled] - expected[~unlabelled]).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64, bool])
def test_blend_extremes_and_label_dtypes(dtype):
    image = np.full((3, 4, 3), 77, np.uint8)
    labels = np.array([[0, 1, 1, 0]] * 3).astype(dtype)
    opaque = render.blend(image, labels, COLORS, 1.0)
    assert opaque[0, 1].tolist() == [255, 0, 0] and opaque[0, 0].tolist() == [77, 77, 77]
    assert np.array_equal(render.blend(image, labels, COLORS, 0.0), image)


def test_blend_handles_many_classes():
    labels = np.array([[0, 300, 1000]], np.uint16)
    colors = render.default_colors(1000)
    out = render.blend(np.zeros((1, 3, 3), np.uint8), labels, colors, 1.0)
    assert out[0, 1].tolist() == list(render.parse_color(colors[299]))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"alpha": 1.5}, SettingsError),
        ({"alpha": "x"}, SettingsError),
        ({"labels": np.zeros((2, 2), np.uint8)}, ImageError),
        ({"labels": np.full((4, 4), -1, np.int32)}, ImageError),
        ({"labels": np.zeros((4, 4), np.float32)}, ImageError),
        ({"rgb": np.zeros((4, 4), np.uint8)}, ImageError),
        ({"colors": ["bleu"]}, SettingsError),
        ({"colors": "#ff0000"}, SettingsError),
    ],
)
def test_blend_bad_input_raises_seg_errors(kwargs, error):
    args = {"rgb": np.zeros((4, 4, 3), np.uint8), "labels": np.ones((4, 4), np.uint8), "colors": COLORS, "alpha": 0.5}
    args.update(kwargs)
    with pytest.raises(error):
        render.blend(**args)


def test_blend_images_mixes_two_images():
    a = np.zeros((2, 2, 3), np.uint8)
    b = np.full((2, 2, 3), 200, np.uint8)
    assert np.all(render.blend_images(a, b, 0.25) == 50)
    assert np.array_equal(render.blend_images(a, b, 0.0), a)


def test_outline_keeps_only_boundary_pixels():
    labels = np.ones((7, 7), np.uint8)
    labels[2:5, 2:5] = 2
    edges = render.outline(labels)
    assert edges[3, 3] == 0 and edges[0, 0] == 0  # interiors (and the image border) are not edges
    assert edges[2, 2] == 2 and edges[1, 2] == 1
    assert set(np.unique(edges)) == {0, 1, 2}


# ---------------------------------------------------------------- heatmaps


def test_heatmap_endpoints_are_the_viridis_and_magma_ends():
    values = np.array([[0.0, 1.0, -3.0, 7.0]], np.float32)
    viridis = render.heatmap(values)
    assert viridis[0, 0].tolist() == [0x44, 0x01, 0x54] and viridis[0, 1].tolist() == [0xFD, 0xE7, 0x25]
    assert viridis[0, 2].tolist() == viridis[0, 0].tolist()  # clipped below
    assert viridis[0, 3].tolist() == viridis[0, 1].tolist()  # clipped above
    magma = render.heatmap(values, colormap="magma")
    assert magma[0, 0].tolist() == [0, 0, 4] and magma[0, 1].tolist() == [0xFC, 0xFD, 0xBF]


def test_heatmap_is_perceptually_ordered_and_nan_safe():
    ramp = np.linspace(0, 1, 256)[None]
    lightness = render.heatmap(ramp).astype(float) @ [0.2126, 0.7152, 0.0722]
    assert np.all(np.diff(lightness[0]) > -1)  # brightness never drops along the ramp
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = render.heatmap(np.array([[np.nan, 0.5]]))
    assert out[0, 0].tolist() == [0, 0, 0]
    with pytest.raises(SettingsError):
        render.heatmap(ramp, colormap="jet")
    with pytest.raises(SettingsError):
        render.heatmap(ramp, vmin=1, vmax=1)


# ---------------------------------------------------------------- encoders and files


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_encode_png_round_trips_exactly():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    data = render.encode_png(rgb)
    assert data.startswith(b"\x89PNG")
    assert np.array_equal(_decode(data), rgb)
    assert np.array_equal(_decode(render.encode_png(rgb[..., 0])), rgb[..., 0])
    with pytest.raises(SettingsError):
        render.encode_png(rgb, compress_level=12)
    with pytest.raises(ImageError):
        render.encode_png(rgb.astype(np.float32))


def test_encode_jpeg_is_close_to_the_input():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, 16:] = (200, 100, 50)
    data = render.encode_jpeg(rgb, quality=95)
    assert data.startswith(b"\xff\xd8")
    assert np.abs(_decode(data).astype(int) - rgb).mean() < 3
    with pytest.raises(SettingsError):
        render.encode_jpeg(rgb, quality=0)


def test_overlay_png_is_the_encoded_blend():
    image = np.full((4, 4, 3), 100, np.uint8)
    labels = np.eye(4, dtype=np.uint8)
    expected = render.blend(image, labels, COLORS, 0.4)
    assert np.array_equal(_decode(render.overlay_png(image, labels, COLORS, 0.4)), expected)


def test_mask_file_is_an_8bit_png_for_up_to_255_classes():
    labels = np.array([[1, 2], [255, 0]], np.int64)
    data, ext = render.mask_file(labels)
    assert ext == ".png"
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == "L"
    assert np.array_equal(np.asarray(decoded), labels)


def test_mask_file_is_a_16bit_tiff_beyond_255_classes():
    labels = np.array([[1, 256], [65535, 3]], np.uint16)
    data, ext = render.mask_file(labels)
    assert ext == ".tif"
    back = tifffile.imread(io.BytesIO(data))
    assert back.dtype == np.uint16 and np.array_equal(back, labels)


def test_mask_file_of_a_stack_is_a_tiff_with_one_page_per_frame():
    labels = np.stack([np.full((3, 4), k, np.uint8) for k in (1, 2, 3)])
    data, ext = render.mask_file(labels)
    assert ext == ".tif"
    back = tifffile.imread(io.BytesIO(data))
    assert back.dtype == np.uint8 and np.array_equal(back, labels)
    single, ext = render.mask_file(labels[:1])
    assert ext == ".png" and np.array_equal(_decode(single), labels[0])


@pytest.mark.parametrize(
    "bad", [np.array([[-1, 2]]), np.array([[70000]]), np.zeros((2, 2), np.float32), np.zeros((1, 1, 1, 1), np.uint8)]
)
def test_mask_file_refuses_what_it_cannot_store(bad):
    with pytest.raises(ImageError):
        render.mask_file(bad)


def test_probabilities_tiff_has_the_class_axis_first():
    rng = np.random.default_rng(0)
    proba = rng.random((5, 6, 3)).astype(np.float32)
    data = render.probabilities_tiff(proba, class_names=["membrane", "cell", "other"])
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        back = tif.asarray()
        assert tif.is_imagej
        assert tif.imagej_metadata.get("Labels") == ["membrane", "cell", "other"]
        assert tif.series[0].axes == "CYX"
    assert back.shape == (3, 5, 6) and back.dtype == np.float32
    assert np.array_equal(back, np.moveaxis(proba, -1, 0))


def test_probabilities_tiff_of_a_stack_is_frames_then_classes():
    proba = np.random.default_rng(1).random((2, 4, 5, 3))
    back = tifffile.imread(io.BytesIO(render.probabilities_tiff(proba)))
    assert back.shape == (2, 3, 4, 5) and back.dtype == np.float32
    assert np.allclose(back[1, 2], proba[1, :, :, 2])
    with pytest.raises(SettingsError):
        render.probabilities_tiff(proba, class_names=["only one"])
    with pytest.raises(ImageError):
        render.probabilities_tiff(np.zeros((4, 4)))


def test_every_error_is_a_seg_error():
    calls = (lambda: render.parse_color("nope"), lambda: render.colorize(np.zeros((2, 2), np.float64), COLORS))
    for call in calls:
        with pytest.raises(SegError):
            call()
