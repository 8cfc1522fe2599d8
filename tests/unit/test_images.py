"""seg.images: reading files into (T, H, W, C), size guards, dtype rules, normalisation."""

from __future__ import annotations

import dataclasses
import io
import struct
import warnings
import zipfile
import zlib

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from seg.errors import ImageError, ImageTooLargeError, SettingsError
from seg.images import (
    DEFAULT_MAX_PIXELS,
    MIN_SIDE,
    Normalization,
    as_frames,
    describe,
    image_digest,
    normalize,
    read_image,
)

H, W = 24, 32


def _scene(height: int = H, width: int = W, channels: int | None = None, seed: int = 0) -> np.ndarray:
    """A smooth uint8 test picture with some noise, (H, W) or (H, W, C)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 60 + 80 * np.sin(yy / 5.0) * np.cos(xx / 7.0) + rng.normal(0, 10, (height, width))
    if channels is None:
        return np.clip(base + 60, 0, 255).astype(np.uint8)
    planes = [np.clip(base + 30 * c + 40, 0, 255) for c in range(channels)]
    return np.stack(planes, axis=-1).astype(np.uint8)


def _pil_bytes(array: np.ndarray, fmt: str = "PNG", mode: str | None = None, **options) -> bytes:
    picture = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _tiff_bytes(array: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_declaring(width: int, height: int, source: bytes | None = None) -> bytes:
    """A valid PNG whose IHDR is patched (with a correct CRC) to declare another size."""
    source = source or _pil_bytes(_scene())
    ihdr = source[16:29]  # after signature (8), length (4) and type (4): 13 data bytes
    patched = struct.pack(">II", width, height) + ihdr[8:]
    return source[:8] + _png_chunk(b"IHDR", patched) + source[33:]


def _tiff_declaring_pages(pages: int, height: int, width: int) -> bytes:
    """A classic TIFF with `pages` IFDs, each declaring height x width uint8 pixels that all
    point at the same few bytes: big on paper, about 120 bytes per page on disk."""
    header = b"II*\x00" + struct.pack("<I", 16) + b"\x00" * 8  # pixel bytes live at offsets 8..15
    tags = 9
    ifd_size = 2 + tags * 12 + 4
    out = bytearray(header)
    for index in range(pages):
        start = 16 + index * ifd_size
        next_offset = start + ifd_size if index < pages - 1 else 0
        entries = [
            (256, 4, 1, width),
            (257, 4, 1, height),
            (258, 3, 1, 8),
            (259, 3, 1, 1),
            (262, 3, 1, 1),
            (273, 4, 1, 8),
            (277, 3, 1, 1),
            (278, 4, 1, height),
            (279, 4, 1, height * width),
        ]
        out += struct.pack("<H", tags)
        for tag, kind, count, value in entries:
            out += struct.pack("<HHII", tag, kind, count, value)
        out += struct.pack("<I", next_offset)
    return bytes(out)


# --------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("how", ["path", "bytes", "file object"])
def test_grey_png_round_trip_from_any_source(tmp_path, how):
    scene = _scene()
    data = _pil_bytes(scene)
    path = tmp_path / "grey.png"
    path.write_bytes(data)
    source = {"path": path, "bytes": data, "file object": io.BytesIO(data)}[how]
    image = read_image(str(path) if how == "path" else source)
    assert image.shape == (1, H, W, 1)
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, :, :, 0], scene)


def test_path_like_source(tmp_path):
    path = tmp_path / "scene.png"
    path.write_bytes(_pil_bytes(_scene()))
    assert read_image(path).shape == (1, H, W, 1)


def test_rgb_png_keeps_three_channels():
    scene = _scene(channels=3)
    image = read_image(_pil_bytes(scene))
    assert image.shape == (1, H, W, 3)
    np.testing.assert_array_equal(image[0], scene)


def test_rgba_png_drops_alpha_and_keeps_colours():
    scene = _scene(channels=4)
    scene[..., 3] = np.linspace(0, 255, W, dtype=np.uint8)  # partly transparent: still dropped
    image = read_image(_pil_bytes(scene))
    assert image.shape == (1, H, W, 3)
    np.testing.assert_array_equal(image[0], scene[..., :3])


def test_grey_with_alpha_becomes_grey():
    scene = np.stack([_scene(), np.full((H, W), 128, np.uint8)], axis=-1)
    image = read_image(_pil_bytes(scene))
    assert image.shape == (1, H, W, 1)
    np.testing.assert_array_equal(image[0, ..., 0], scene[..., 0])


def test_16_bit_png_stays_uint16():
    scene = _scene().astype(np.uint16) * 257
    image = read_image(_pil_bytes(scene))
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image[0, ..., 0], scene)


def test_colour_palette_png_becomes_rgb():
    rgb = _scene(channels=3)
    data = _pil_bytes(rgb, mode="P")
    assert Image.open(io.BytesIO(data)).mode == "P"
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    image = read_image(data)
    assert image.shape == (1, H, W, 3)
    np.testing.assert_array_equal(image[0], expected)


def test_grey_palette_png_becomes_one_channel():
    picture = Image.fromarray(_scene()).convert("P")  # L -> P keeps a grey palette
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    image = read_image(buffer.getvalue())
    assert image.shape == (1, H, W, 1)
    np.testing.assert_array_equal(image[0, ..., 0], _scene())


def test_bilevel_png_reads_as_0_and_255():
    mask = _scene() > 128
    image = read_image(_pil_bytes(mask))
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, ..., 0], np.where(mask, 255, 0))


@pytest.mark.parametrize("writer", ["tifffile", "pillow lzw"])
def test_int32_tiff_becomes_uint16_when_it_fits(writer):
    values = _scene().astype(np.int32) * 100
    if writer == "tifffile":
        data = _tiff_bytes(values)
    else:
        assert Image.fromarray(values).mode == "I"
        data = _pil_bytes(values, "TIFF", compression="tiff_lzw")
    image = read_image(data)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image[0, ..., 0], values)


def test_bmp_round_trip():
    scene = _scene(channels=3)
    image = read_image(_pil_bytes(scene, "BMP"))
    assert image.shape == (1, H, W, 3)
    np.testing.assert_array_equal(image[0], scene)


@pytest.mark.parametrize("channels", [None, 3])
def test_jpeg_reads_close_to_the_original(channels):
    scene = _scene(64, 64, channels)
    image = read_image(_pil_bytes(scene, "JPEG", quality=95))
    assert image.shape == (1, 64, 64, 1 if channels is None else 3)
    assert image.dtype == np.uint8
    assert np.abs(image[0].astype(float) - scene.reshape(64, 64, -1)).mean() < 4  # lossy


def test_float32_tiff_exact():
    scene = np.random.default_rng(1).normal(size=(H, W)).astype(np.float32)
    image = read_image(_tiff_bytes(scene))
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image[0, ..., 0], scene)


def test_float64_tiff_becomes_float32():
    scene = np.linspace(-1, 1, H * W).reshape(H, W)
    image = read_image(_tiff_bytes(scene))
    assert image.dtype == np.float32
    np.testing.assert_allclose(image[0, ..., 0], scene, rtol=1e-6)


def test_uint16_tiff_and_file_on_disk(tmp_path):
    scene = _scene().astype(np.uint16) * 16
    path = tmp_path / "twelve bit.tif"
    tifffile.imwrite(path, scene)
    image = read_image(path)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image[0, ..., 0], scene)


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.arange(H * W).reshape(H, W).astype(np.int16), np.uint16),
        (np.arange(H * W).reshape(H, W).astype(np.int16) - 100, np.float32),
    ],
    ids=["non-negative int16", "negative int16"],
)
def test_signed_tiff_converted_losslessly(values, dtype):
    image = read_image(_tiff_bytes(values))
    assert image.dtype == dtype
    np.testing.assert_array_equal(image[0, ..., 0], values)


def test_multi_page_tiff_becomes_frames():
    stack = np.stack([_scene(seed=s) for s in range(5)])
    image = read_image(_tiff_bytes(stack, photometric="minisblack"))
    assert image.shape == (5, H, W, 1)
    np.testing.assert_array_equal(image[..., 0], stack)


def test_plain_multi_page_tiff_without_metadata_becomes_frames():
    stack = np.stack([_scene(seed=s) for s in range(3)])
    image = read_image(_tiff_bytes(stack, photometric="minisblack", metadata=None))
    assert image.shape == (3, H, W, 1)
    np.testing.assert_array_equal(image[..., 0], stack)


def test_five_channel_tiff_channels_last():
    scene = _scene(channels=5)
    image = read_image(_tiff_bytes(scene, photometric="minisblack", planarconfig="contig"))
    assert image.shape == (1, H, W, 5)
    np.testing.assert_array_equal(image[0], scene)


def test_planar_five_channel_tiff_channels_last():
    scene = _scene(channels=5)
    planar = np.moveaxis(scene, -1, 0).copy()
    image = read_image(_tiff_bytes(planar, photometric="minisblack", planarconfig="separate"))
    assert image.shape == (1, H, W, 5)
    np.testing.assert_array_equal(image[0], scene)


def test_imagej_tcyx_hyperstack_maps_time_to_frames_and_c_to_channels():
    stack = np.arange(3 * 2 * H * W, dtype=np.uint16).reshape(3, 2, H, W)
    image = read_image(_tiff_bytes(stack, imagej=True, metadata={"axes": "TCYX"}))
    assert image.shape == (3, H, W, 2)
    for t in range(3):
        for c in range(2):
            np.testing.assert_array_equal(image[t, ..., c], stack[t, c])


def test_imagej_tzcyx_hyperstack_z_and_t_both_become_frames():
    stack = np.arange(2 * 3 * 2 * H * W, dtype=np.uint16).reshape(2, 3, 2, H, W)
    image = read_image(_tiff_bytes(stack, imagej=True, metadata={"axes": "TZCYX"}))
    assert image.shape == (6, H, W, 2)
    # outer axis first: every z slice of time point 0, then those of time point 1
    np.testing.assert_array_equal(image[4, ..., 1], stack[1, 1, 1])


def test_ome_tiff_axes_are_mapped():
    stack = np.arange(2 * 3 * H * W, dtype=np.uint16).reshape(2, 3, H, W)
    image = read_image(_tiff_bytes(stack, ome=True, metadata={"axes": "TCYX"}))
    assert image.shape == (2, H, W, 3)
    np.testing.assert_array_equal(image[1, ..., 2], stack[1, 2])


def test_rgba_tiff_drops_alpha():
    scene = _scene(channels=4)
    image = read_image(_tiff_bytes(scene, photometric="rgb", extrasamples=["unassalpha"]))
    assert image.shape == (1, H, W, 3)
    np.testing.assert_array_equal(image[0], scene[..., :3])


def test_bilevel_tiff_reads_as_0_and_255():
    mask = _scene() > 128
    image = read_image(_tiff_bytes(mask, photometric="minisblack"))
    np.testing.assert_array_equal(image[0, ..., 0], np.where(mask, 255, 0).astype(np.uint8))


def test_white_is_zero_tiff_reads_as_displayed():
    # PhotometricInterpretation MINISWHITE (scanners, faxes): stored 0 is white, so 255 here.
    ink = _scene()
    image = read_image(_tiff_bytes(ink, photometric="miniswhite"))
    np.testing.assert_array_equal(image[0, ..., 0], 255 - ink)


def test_single_page_lzw_tiff_is_read():
    # Pillow writes LZW; tifffile reads it with imagecodecs, or Pillow/libtiff reads it without.
    scene = _scene(channels=3)
    image = read_image(_pil_bytes(scene, "TIFF", compression="tiff_lzw"))
    np.testing.assert_array_equal(image[0], scene)


def _multi_page_lzw_tiff() -> tuple[bytes, np.ndarray]:
    scenes = [_scene(seed=s) for s in range(3)]
    frames = [Image.fromarray(scene) for scene in scenes]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="TIFF", compression="tiff_lzw", save_all=True, append_images=frames[1:])
    return buffer.getvalue(), np.stack(scenes)


def test_multi_page_lzw_tiff_is_read():
    # imagecodecs is a dependency (requirements.txt, pyproject.toml): LZW stacks must read.
    data, scenes = _multi_page_lzw_tiff()
    image = read_image(data)
    assert image.shape == (3, H, W, 1)
    np.testing.assert_array_equal(image[..., 0], scenes)


def test_multi_page_lzw_tiff_without_a_codec_is_refused_with_the_missing_package_named(monkeypatch):
    from seg.images import tiff

    monkeypatch.setattr(tiff, "_tifffile_can_decode", lambda page: False)
    data, _ = _multi_page_lzw_tiff()
    with pytest.raises(ImageError, match=r"LZW compression needs the 'imagecodecs' package for multi-page"):
        read_image(data)


def test_real_em_slice(isbi_dir):
    image = read_image(isbi_dir / "image" / "00.png")
    assert image.shape == (1, 512, 512, 1)
    assert image.dtype == np.uint8


def test_pillow_global_limit_does_not_interfere(monkeypatch):
    # Only max_pixels decides: Pillow's MAX_IMAGE_PIXELS neither warns nor refuses.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = read_image(_pil_bytes(_scene(64, 64)))
    assert image.shape == (1, 64, 64, 1)


# --------------------------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"\x89", "too short"),
        (b"Hello, this is a note\nnot a picture\n", "text"),
        (b"GIF89a" + b"\x00" * 40, "GIF"),
    ],
    ids=["empty", "one byte", "text", "gif"],
)
def test_non_images_are_refused_with_a_reason(data, words):
    with pytest.raises(ImageError, match=words):
        read_image(data)


def test_zip_file_is_refused(tmp_path):
    path = tmp_path / "model.segmodel"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.json", "{}")
    with pytest.raises(ImageError, match="ZIP"):
        read_image(path)


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(ImageError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageError):
        read_image(tmp_path)


def test_huge_declared_png_is_refused_before_decoding():
    data = _png_declaring(70_000, 70_000)
    with pytest.raises(ImageError, match=r"4,900,000,000 pixels.*100,000,000.*max_pixels"):
        read_image(data)


def test_png_just_over_pillows_warning_limit_never_leaks_a_pillow_warning():
    # 95 Mpx is within our default limit but above Pillow's ~89 Mpx DecompressionBombWarning.
    data = _png_declaring(10_000, 9_500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImageError, match="truncated"):  # the pixel data is not there
            read_image(data)


def test_lying_png_header_is_refused():
    data = _png_declaring(W * 3, H * 3)  # claims 9x the pixels its data holds
    with pytest.raises(ImageError, match="corrupt"):
        read_image(data)


def test_truncated_png_is_refused_and_pillow_setting_untouched():
    data = _pil_bytes(_scene(64, 64, 3))
    with pytest.raises(ImageError, match="truncated"):
        read_image(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_jpeg_is_refused():
    data = _pil_bytes(_scene(64, 64, 3), "JPEG")
    with pytest.raises(ImageError):
        read_image(data[: len(data) // 2])


@pytest.mark.parametrize("imagej", [False, True])
def test_truncated_tiff_stack_is_refused(imagej):
    stack = np.stack([_scene(seed=s) for s in range(4)])
    data = _tiff_bytes(stack, photometric="minisblack", imagej=imagej)
    expected = "declares 4 images but 1 were found" if imagej else "the TIFF data is corrupt, truncated"
    with pytest.raises(ImageError, match=expected):
        read_image(data[: len(data) // 2])


@pytest.mark.parametrize("side", [1, MIN_SIDE - 1])
def test_tiny_images_are_refused(side):
    with pytest.raises(ImageError, match=f"at least {MIN_SIDE} pixels"):
        read_image(_pil_bytes(np.zeros((side, side), np.uint8)))


def test_animated_png_is_refused():
    frames = [Image.fromarray(_scene(seed=s)) for s in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="animated PNG with 3 frames.*multi-page TIFF"):
        read_image(buffer.getvalue())


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_tiff_is_refused(bad):
    scene = np.ones((H, W), np.float32)
    scene[3, 4] = bad
    with pytest.raises(ImageError, match="1 of 768 values are NaN"):
        read_image(_tiff_bytes(scene))


def test_complex_tiff_is_refused():
    with pytest.raises(ImageError, match="complex"):
        read_image(_tiff_bytes(np.ones((H, W), np.complex64)))


def test_five_d_tiff_without_axis_names_is_refused():
    data = _tiff_bytes(np.zeros((2, 2, 2, H, W), np.uint8))  # axes QQQYX: which are time, which z?
    with pytest.raises(ImageError, match="too many dimensions"):
        read_image(data)


def test_tiff_with_an_axis_that_is_neither_frames_nor_channels_is_refused():
    data = _tiff_bytes(
        np.zeros((2, 3, H, W), np.uint8), photometric="minisblack", metadata={"axes": "TAYX"}
    )  # A = angle
    with pytest.raises(ImageError, match="axis 'A'"):
        read_image(data)


def test_ten_thousand_pages_of_512x512_refused_quickly_without_allocating():
    data = _tiff_declaring_pages(10_000, 512, 512)  # 2.6 Gpx on paper, 1 MB on disk
    with pytest.raises(ImageError, match=r"2,621,440,000 pixels exceed the limit of 100,000,000"):
        read_image(data)


def test_more_frames_than_max_frames_refused():
    stack = np.zeros((10_001, MIN_SIDE, MIN_SIDE), np.uint8)
    data = _tiff_bytes(stack, photometric="minisblack", metadata=None)
    with pytest.raises(ImageError, match=r"10,001 frames exceed the limit of 10,000"):
        read_image(data)
    with pytest.raises(ImageError, match="max_frames"):
        read_image(_tiff_bytes(np.zeros((3, H, W), np.uint8), photometric="minisblack"), max_frames=2)


def test_endless_page_chain_refused_before_parsing_every_page():
    data = _tiff_declaring_pages(50, MIN_SIDE, MIN_SIDE)
    with pytest.raises(ImageError, match="more than 40 pages"):
        read_image(data, max_frames=10)


def test_max_pixels_is_configurable():
    data = _pil_bytes(_scene())
    with pytest.raises(ImageError, match=r"768 pixels exceed the limit of 500 pixels.*max_pixels"):
        read_image(data, max_pixels=500)
    assert read_image(data, max_pixels=H * W).shape == (1, H, W, 1)
    assert DEFAULT_MAX_PIXELS == 100_000_000


def test_too_many_bytes_for_the_pixel_budget_refused():
    # 60 float64 channels: few pixels, many bytes (60 * 8 > 16 bytes per allowed pixel)
    data = _tiff_bytes(np.zeros((H, W, 60)), photometric="minisblack", planarconfig="contig")
    with pytest.raises(ImageError, match="bytes"):
        read_image(data, max_pixels=H * W)


@pytest.mark.parametrize("value", [0, -5, 1.5, "many", True])
def test_bad_limits_are_settings_errors(value):
    with pytest.raises(SettingsError, match="max_pixels"):
        read_image(_pil_bytes(_scene()), max_pixels=value)


def test_wrong_source_type_is_a_type_error():
    with pytest.raises(TypeError):
        read_image(42)


# --------------------------------------------------------------------------------------------
# Fuzz: hostile bytes only ever raise ImageError


def _check_outcome(data: bytes) -> None:
    try:
        image = read_image(data, max_pixels=1_000_000)
    except ImageError:
        return
    assert image.ndim == 4 and image.dtype in (np.uint8, np.uint16, np.float32)


_FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
_SEEDS = [
    _pil_bytes(_scene(16, 16)),
    _pil_bytes(_scene(16, 16, 3), "JPEG"),
    _tiff_bytes(np.stack([_scene(16, 16, seed=s) for s in range(3)]), photometric="minisblack"),
    _tiff_bytes(np.zeros((2, 2, 16, 16), np.uint16), imagej=True, metadata={"axes": "TCYX"}),
]


@_FUZZ
@given(
    st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"\xff\xd8\xff", b"BM"]),
    st.binary(max_size=300),
)
def test_fuzz_random_bytes_only_raise_image_error(prefix, tail):
    _check_outcome(prefix + tail)


@_FUZZ
@given(
    st.sampled_from(range(len(_SEEDS))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 10_000),
)
def test_fuzz_mutated_png_tiff_jpeg_only_raise_image_error(which, edits, cut):
    data = bytearray(_SEEDS[which])
    for position, value in edits:
        data[position % len(data)] = value
    _check_outcome(bytes(data[: max(cut, 8)] if cut < len(data) else data))


# --------------------------------------------------------------------------------------------
# Layout and dtype


def test_as_frames_layouts_are_views():
    grey = np.zeros((H, W), np.uint8)
    rgb = np.zeros((H, W, 3), np.uint16)
    stack = np.zeros((2, H, W, 1), np.float32)
    assert as_frames(grey).shape == (1, H, W, 1) and np.shares_memory(as_frames(grey), grey)
    assert as_frames(rgb).shape == (1, H, W, 3) and np.shares_memory(as_frames(rgb), rgb)
    assert as_frames(stack).shape == (2, H, W, 1) and np.shares_memory(as_frames(stack), stack)


@pytest.mark.parametrize("shape", [(W,), (1, 2, H, W, 1), ()])
def test_as_frames_refuses_other_dimensions(shape):
    with pytest.raises(ImageError, match="dimensions"):
        as_frames(np.zeros(shape, np.uint8))


def test_as_frames_refuses_frames_stored_as_channels_with_a_hint():
    with pytest.raises(ImageError, match=r"image\[\.\.\., None\]"):
        as_frames(np.zeros((5, H, 65), np.uint8))


def test_as_frames_refuses_empty_axes():
    with pytest.raises(ImageError, match="empty"):
        as_frames(np.zeros((0, W), np.uint8))


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.array([[True, False]] * 4 * 2).reshape(4, 4), np.uint8),
        (np.arange(16, dtype=np.int8).reshape(4, 4), np.uint8),
        (np.arange(16, dtype=np.int32).reshape(4, 4) * 4000, np.uint16),
        (np.arange(16, dtype=np.uint32).reshape(4, 4) * 5000, np.float32),
        (np.arange(16, dtype=np.int64).reshape(4, 4) - 8, np.float32),
        (np.arange(16, dtype=np.float64).reshape(4, 4) / 3, np.float32),
        (np.arange(16, dtype=np.float16).reshape(4, 4), np.float32),
        (np.arange(16, dtype=">u2").reshape(4, 4), np.uint16),
    ],
    ids=["bool", "int8", "int32 fits", "uint32 too big", "negative int64", "float64", "float16", "big-endian uint16"],
)
def test_as_frames_dtype_conversions(values, dtype):
    frames = as_frames(values)
    assert frames.dtype == np.dtype(dtype) and frames.dtype.isnative
    expected = values.astype(np.uint8) * 255 if values.dtype == bool else values
    np.testing.assert_allclose(frames[0, ..., 0], expected.astype(np.float64), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.complex64, object])
def test_as_frames_refuses_unusable_dtypes(dtype):
    with pytest.raises(ImageError):
        as_frames(np.ones((H, W), dtype))


def test_as_frames_refuses_nan_and_float64_beyond_float32_range():
    values = np.ones((H, W))
    values[0, 0] = np.nan
    with pytest.raises(ImageError, match="NaN"):
        as_frames(values)
    with pytest.raises(ImageError, match="float32 range"):
        as_frames(np.full((H, W), 1e300))


# --------------------------------------------------------------------------------------------
# Normalisation


@pytest.mark.parametrize("factor", [257, 256])
def test_uint8_and_uint16_versions_of_a_scene_normalise_alike(isbi_dir, factor):
    em = read_image(isbi_dir / "image" / "00.png")[0]
    rgb = _scene(600, 700, 3)  # large enough for the sampled percentile estimate
    for scene in (em, rgb):
        wide = scene.astype(np.uint16) * factor
        np.testing.assert_allclose(normalize(scene), normalize(wide), rtol=0, atol=1e-6)


def test_16_bit_image_with_12_bit_content_is_not_black():
    twelve_bit = (_scene().astype(np.uint16) * 16)[..., None]  # values up to ~4080 of 65535
    assert normalize(twelve_bit).max() == pytest.approx(1.0, abs=0.1)
    assert normalize(twelve_bit, Normalization("dtype")).max() < 0.07  # why percentile is default


def test_percentile_mode_matches_numpy_percentiles_per_channel():
    scene = _scene(channels=3)
    out = normalize(scene, Normalization(low=2, high=98))
    for c in range(3):
        low, high = np.percentile(scene[..., c], [2, 98])
        np.testing.assert_allclose(out[..., c], (scene[..., c] - low) / (high - low), atol=1e-6)


def test_percentile_mode_does_not_clip_the_extremes():
    out = normalize(_scene())
    assert out.min() < 0 and out.max() > 1  # the brightest 0.5 % keep their contrast
    assert out.dtype == np.float32 and out.shape == (H, W)


def test_constant_channel_becomes_zero_without_warnings():
    scene = np.dstack([_scene(), np.full((H, W), 7, np.uint8)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = normalize(scene)
    assert out.shape == (H, W, 2)
    assert np.all(out[..., 1] == 0)
    assert out[..., 0].std() > 0.1


def test_sparse_bright_spots_on_an_even_background_stay_visible():
    beads = np.full((64, 64), 100, np.uint16)
    beads[10, 10] = beads[40, 50] = 4000  # 2 of 4096 pixels: inside the top 0.5 %
    out = normalize(beads)
    assert out[10, 10] == pytest.approx(1.0) and out[0, 0] == pytest.approx(0.0)


def test_large_frame_is_normalised_deterministically():
    big = _scene(1024, 1024, 3)
    first, second = normalize(big), normalize(big)
    np.testing.assert_array_equal(first, second)
    assert 0.0 <= np.median(first) <= 1.0


def test_dtype_mode_divides_by_the_dtype_maximum():
    assert normalize(np.full((4, 4, 1), 255, np.uint8), Normalization("dtype")).max() == 1.0
    assert normalize(np.full((4, 4, 1), 65535, np.uint16), Normalization("dtype")).max() == 1.0
    floats = np.linspace(-2, 3, 16, dtype=np.float32).reshape(4, 4, 1)
    np.testing.assert_array_equal(normalize(floats, Normalization("dtype")), floats)


def test_none_mode_keeps_raw_values_and_input_is_untouched():
    scene = _scene(channels=2)
    before = scene.copy()
    out = normalize(scene, Normalization("none"))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, scene)
    np.testing.assert_array_equal(scene, before)


def test_normalize_refuses_bad_frames():
    with pytest.raises(ImageError):
        normalize(np.zeros((2, H, W, 1), np.uint8))
    values = np.ones((H, W), np.float32)
    values[1, 1] = np.inf
    with pytest.raises(ImageError, match="infinite"):
        normalize(values)


def test_normalization_defaults_and_round_trip():
    default = Normalization()
    assert (default.mode, default.low, default.high) == ("percentile", 0.5, 99.5)
    custom = Normalization("percentile", 1, 99)
    assert Normalization.from_dict(custom.to_dict()) == custom
    assert custom.to_dict() == {"mode": "percentile", "low": 1.0, "high": 99.0}
    assert Normalization.from_dict({"mode": "dtype"}) == Normalization("dtype")
    with pytest.raises(dataclasses.FrozenInstanceError):
        default.mode = "none"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "zscore"},
        {"mode": 1},
        {"low": -1},
        {"high": 101},
        {"low": 50, "high": 50},
        {"low": float("nan")},
        {"low": True},
        {"high": "99"},
    ],
)
def test_invalid_normalization_is_a_settings_error(kwargs):
    with pytest.raises(SettingsError):
        Normalization(**kwargs)


@pytest.mark.parametrize(
    "data",
    [{"mode": "percentile", "low": 1, "high": 99, "extra": 1}, ["percentile"], None, {"low": "1"}, {"__class__": "x"}],
)
def test_normalization_from_untrusted_dict_refuses_bad_content(data):
    with pytest.raises(SettingsError):
        Normalization.from_dict(data)


# --------------------------------------------------------------------------------------------
# Identity and description


def test_image_digest_follows_content_shape_and_dtype():
    scene = _scene(channels=3)
    assert image_digest(scene) == image_digest(scene.copy())
    assert image_digest(scene[:, ::2]) == image_digest(np.ascontiguousarray(scene[:, ::2]))
    changed = scene.copy()
    changed[0, 0, 0] ^= 1
    digests = {
        image_digest(scene),
        image_digest(changed),
        image_digest(scene.astype(np.uint16)),
        image_digest(scene.reshape(W, H, 3)),
    }
    assert len(digests) == 4
    assert len(image_digest(scene)) == 32


def test_describe_reads_like_a_status_line():
    assert describe(np.zeros((3, 480, 640, 2), np.uint16)) == "3 frames · 640×480 px · 2 channels · uint16"
    assert describe(np.zeros((H, W), np.uint8)) == f"1 frame · {W}×{H} px · 1 channel · uint8"


@pytest.mark.parametrize(
    "limits, limit, size, advice",
    [
        ({"max_pixels": 5_000}, "max_pixels", "100×60 pixels × 3 frames", "raise the limit with max_pixels=..."),
        ({"max_frames": 2}, "max_frames", "100×60 pixels × 3 frames", "raise the limit with max_frames=..."),
        # A frame too big for the caller (the app) is for the command line, which tiles it.
        (
            {"max_frame_pixels": 5_000},
            "max_frame_pixels",
            "100×60 pixels × 3 frames",
            "command line (python -m seg apply)",
        ),
    ],
)
def test_a_size_limit_names_itself_so_an_app_can_give_its_own_advice(limits, limit, size, advice):
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((3, 60, 100), np.uint8), imagej=True, metadata={"axes": "TYX"})
    with pytest.raises(ImageTooLargeError) as refused:
        read_image(buffer.getvalue(), **limits)
    assert (refused.value.limit, refused.value.size) == (limit, size)
    assert advice in str(refused.value)
