"""Read image files into ``(T, H, W, C)`` arrays, guard their size, and normalise intensities.

Every image in the engine has the layout ``(T, H, W, C)``: frames (time points and/or z slices),
rows, columns, channels; its dtype is ``uint8``, ``uint16`` or ``float32`` (finite).

Reading decisions, all deliberate:

* Formats: PNG, JPEG and BMP are decoded with Pillow, TIFF with tifffile (never Pillow for
  multi-page data). GIF, WebP and everything else are refused with a message naming what to
  convert to. Animated PNGs (APNG) are refused too: their frames are deltas composited on the
  fly, and a time series belongs in a multi-page TIFF.
* Alpha is always dropped (RGBA -> RGB, LA -> grey): it is not image content, and keeping it
  would give the RGB and RGBA exports of one scene different channel counts (so a model trained
  on one could not be applied to the other). Palette images become RGB, or grey when the
  palette is grey.
* TIFF axes come from tifffile's series (ImageJ hyperstacks, OME, tifffile's own metadata,
  plain multi-page files): T, Z, pages (I) and unknown axes (Q) become frames, outer axis first
  (TZCYX -> every Z slice of time point 0, then of time point 1, ...); C, S (samples, e.g. RGB)
  and E (wavelength) become channels. At most two frame axes and two channel axes are mapped;
  anything else (e.g. three unknown axes) is refused rather than guessed. Only the first series
  is read (pyramid levels and thumbnails are ignored).
* Size guards run on the declared size before any pixel is decoded: frames x height x width
  must not exceed ``max_pixels``, frames must not exceed ``max_frames``, the decoded array must
  not exceed ``16 * max_pixels`` bytes (so 64 float64 channels cannot hide behind a small pixel
  count), and each side must be at least :data:`MIN_SIDE` pixels. Pillow's own
  ``MAX_IMAGE_PIXELS`` check is never reached (its plugins are constructed directly), so our
  ``max_pixels`` is the one limit a user has to know about, and no ``DecompressionBombWarning``
  or ``DecompressionBombError`` can escape.
* Anything a decoder raises on hostile bytes becomes :class:`~seg.errors.ImageError`.
"""

from __future__ import annotations

import hashlib
import io
import math
import numbers
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import tifffile
from PIL import BmpImagePlugin, Image, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from seg.errors import ImageError, SettingsError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_FRAMES",
    "MIN_SIDE",
    "MAX_CHANNELS",
    "read_image",
    "as_frames",
    "Normalization",
    "normalize",
    "normalization_statistics",
    "image_digest",
    "describe",
]

DEFAULT_MAX_PIXELS: int = 100_000_000
"""Largest frames x height x width :func:`read_image` accepts unless told otherwise."""

DEFAULT_MAX_FRAMES: int = 10_000
"""Largest number of frames (time points x z slices) :func:`read_image` accepts by default."""

MIN_SIDE: int = 4
"""Smallest accepted height and width: below this there is nothing to scribble on, and the
gradient and texture filters (finite differences over several pixels) degenerate."""

MAX_CHANNELS: int = 64
"""Most channels an image may have; more almost always means frames stored on the last axis."""

# Decoded bytes allowed per pixel of max_pixels: 4 float32 channels, or 16 uint8 channels.
_BYTES_PER_PIXEL = 16
# A TIFF may store each channel of a frame as its own page (ImageJ does). More pages than this
# per allowed frame are refused before tifffile parses every page (which costs ~15 us each).
_PAGES_PER_FRAME = 4
# Pixels per channel used to estimate percentiles: enough for a 0.5 % tail to hold >1000 samples.
_PERCENTILE_SAMPLES = 1 << 18
_MAX_DETAIL = 200  # characters of a decoder's own message quoted in ours

_FORMATS = "PNG, JPEG, TIFF or BMP"
_PIL_OPENERS = {
    "PNG": PngImagePlugin.PngImageFile,
    # The JPEG class itself, not Pillow's factory: a multi-picture (MPO) camera file is then read
    # as its primary image instead of being refused as animated.
    "JPEG": JpegImagePlugin.JpegImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
}
# Pillow modes read as they are, and the mode every other accepted mode is converted to.
_PIL_KEEP = {"L", "RGB", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
_PIL_CONVERT = {
    "1": "L", "LA": "L", "La": "L",
    "RGBA": "RGB", "RGBa": "RGB", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB", "HSV": "RGB",
}
# tifffile axis codes: T time, Z depth, I page index, Q unknown / C channel, S sample, E lambda.
_FRAME_AXES = "TZIQ"
_CHANNEL_AXES = "CSE"
_ALPHA_EXTRASAMPLES = (1, 2)  # TIFF ExtraSamples: associated and unassociated alpha


# --------------------------------------------------------------------------------------------
# Reading


def read_image(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_frame_pixels: int | None = None,
) -> np.ndarray:
    """Read a PNG, JPEG, TIFF or BMP image into a ``(T, H, W, C)`` array.

    Parameters
    ----------
    source : str, os.PathLike, bytes or binary file object
        A path, the encoded file content, or a binary file object (read from its current
        position, e.g. a Streamlit ``UploadedFile``).
    max_pixels : int, optional
        Largest accepted frames x height x width, checked on the declared size before decoding.
        Raise it to open larger images (memory permitting).
    max_frames : int, optional
        Largest accepted number of frames (time points x z slices).
    max_frame_pixels : int, optional
        Largest accepted height x width of one frame, also checked before decoding (None: only
        ``max_pixels`` applies).

    Returns
    -------
    image : (T, H, W, C) ndarray of uint8, uint16 or float32
        Alpha dropped, palettes expanded; float data is finite.

    Raises
    ------
    ImageError
        The file cannot be opened, is not a supported image, is corrupt or truncated, is too
        large or too small, has axes that cannot be mapped to frames and channels, or holds
        NaN/inf values.
    SettingsError
        ``max_pixels`` or ``max_frames`` is not a positive integer.
    TypeError
        ``source`` is none of the accepted types.
    """
    limits = _Limits(
        _positive_int(max_pixels, "max_pixels"), _positive_int(max_frames, "max_frames"),
        None if max_frame_pixels is None else _positive_int(max_frame_pixels, "max_frame_pixels"),
    )
    with _open_source(source, limits) as (stream, label):
        kind = _sniff(stream, label)
        if kind == "TIFF":
            image = _read_tiff(stream, label, limits)
        else:
            image = _read_pil(stream, kind, label, limits)
    return _to_frames(image, label)


@dataclass(frozen=True)
class _Limits:
    max_pixels: int
    max_frames: int
    max_frame_pixels: int | None = None

    @property
    def max_bytes(self) -> int:
        return self.max_pixels * _BYTES_PER_PIXEL


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise SettingsError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@contextmanager
def _open_source(source: Any, limits: _Limits) -> Iterator[tuple[BinaryIO, str]]:
    """Yield a seekable binary stream positioned at the start of the image, and its label."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield io.BytesIO(source), "the image"
    elif isinstance(source, (str, os.PathLike)):
        label = repr(os.path.basename(os.fspath(source)) or os.fspath(source))
        try:
            stream = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ImageError(
                f"Cannot open {label}: {exc.strerror or exc}. Check that the path points to an "
                "image file."
            ) from exc
        with stream:
            yield stream, label
    elif hasattr(source, "read"):
        name = getattr(source, "name", None)
        named = isinstance(name, (str, os.PathLike))
        label = repr(os.path.basename(os.fspath(name))) if named else "the image"
        # Read a bounded amount: a stream is not allowed to exhaust memory before any check runs.
        limit = limits.max_bytes + (1 << 26)
        data = source.read(limit + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"read_image needs a binary file object (mode 'rb'), got {source!r}")
        if len(data) > limit:
            raise ImageError(
                f"Cannot read {label}: the file is larger than {limit:,} bytes, more than any "
                f"image within max_pixels={limits.max_pixels:,} needs. Raise max_pixels to open it."
            )
        yield io.BytesIO(data), label
    else:
        raise TypeError(
            f"read_image reads a path, bytes or a binary file object, got {type(source).__name__}"
        )


def _sniff(stream: BinaryIO, label: str) -> str:
    """Name the format from the first bytes: 'PNG', 'JPEG', 'BMP' or 'TIFF'; refuse the rest."""
    head = stream.read(16)
    stream.seek(0)
    if not head:
        raise ImageError(
            f"Cannot read {label}: the file is empty (0 bytes). Choose a {_FORMATS} image."
        )
    if len(head) < 8:
        raise ImageError(
            f"Cannot read {label}: {len(head)} byte(s) is too short to be an image; the upload may "
            f"have been cut off. Choose a {_FORMATS} image."
        )
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    raise ImageError(
        f"Cannot read {label}: it {_guess_content(head)}, not a {_FORMATS} image. {_advice(head)}"
    )


def _guess_content(head: bytes) -> str:
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "is a GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "is a WebP image"
    if head.startswith(b"PK\x03\x04"):
        return "is a ZIP archive (a .segmodel model file or a zipped folder?)"
    if head.startswith(b"\x93NUMPY"):
        return "is a NumPy .npy file"
    text = head.decode("utf-8", errors="replace")
    if all(char.isprintable() or char in "\r\n\t" for char in text):
        return "looks like a text file"
    return f"starts with the bytes {head[:8]!r}"


def _advice(head: bytes) -> str:
    if head.startswith((b"GIF87a", b"GIF89a", b"RIFF")):
        return "Convert it to PNG, or to a multi-page TIFF if it is animated."
    return "Export the image as PNG or TIFF and try again."


@contextmanager
def _decoding(label: str, kind: str) -> Iterator[None]:
    """Turn whatever a decoder raises on untrusted bytes into an ImageError."""
    try:
        yield
    except ImageError:
        raise
    except MemoryError as exc:
        raise ImageError(
            f"Cannot read {label}: not enough memory to decode it. Close other images or open a "
            "smaller crop."
        ) from exc
    except Exception as exc:  # decoders raise many types (OSError, SyntaxError, struct.error, ...)
        detail = f"{type(exc).__name__}: {exc}"[:_MAX_DETAIL]
        raise ImageError(
            f"Cannot read {label}: the {kind} data is corrupt, truncated or unsupported "
            f"({detail}). Re-export the image (PNG or uncompressed TIFF are safest) and try again."
        ) from exc


def _check_extent(
    label: str, frames: int, height: int, width: int, channels: int, itemsize: int, limits: _Limits
) -> None:
    """Refuse a declared size before any pixel is decoded."""
    size = f"{width}×{height} pixels" + (f" × {frames:,} frames" if frames != 1 else "")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ImageError(
            f"Cannot use {label}: it is {size}, but images need at least {MIN_SIDE} pixels on each "
            "side to be scribbled on and filtered. Choose a larger image."
        )
    if frames > limits.max_frames:
        raise ImageError(
            f"Cannot read {label}: {frames:,} frames exceed the limit of {limits.max_frames:,} "
            "frames. Open a subset of the frames, or raise the limit with max_frames=..."
        )
    if limits.max_frame_pixels is not None and height * width > limits.max_frame_pixels:
        raise ImageError(
            f"Cannot read {label}: {width}×{height} = {height * width / 1e6:.1f} megapixels per frame "
            f"exceed the limit of {limits.max_frame_pixels / 1e6:.0f} megapixels per frame. Crop or "
            "downsample it, or segment it with the command line (python -m seg apply)."
        )
    pixels = frames * height * width
    if pixels > limits.max_pixels:
        raise ImageError(
            f"Cannot read {label}: {size} = {pixels:,} pixels exceed the limit of "
            f"{limits.max_pixels:,} pixels (frames × height × width). Crop or downsample it, or "
            "raise the limit with max_pixels=... if the machine has the memory."
        )
    if channels > MAX_CHANNELS:
        raise ImageError(
            f"Cannot read {label}: {channels} channels exceed the limit of {MAX_CHANNELS}. If "
            "these are time points or z slices, save the file with T or Z axis metadata (e.g. an "
            "ImageJ hyperstack)."
        )
    nbytes = pixels * channels * itemsize
    if nbytes > limits.max_bytes:
        raise ImageError(
            f"Cannot read {label}: {size} with {channels} channels of {itemsize}-byte values need "
            f"{nbytes:,} bytes, more than the {limits.max_bytes:,} allowed for "
            f"max_pixels={limits.max_pixels:,}. Keep fewer channels, or raise max_pixels."
        )


# --- Pillow: PNG, JPEG, BMP (and single-page TIFFs tifffile lacks a codec for) ----------------


def _read_pil(stream: BinaryIO, kind: str, label: str, limits: _Limits) -> np.ndarray:
    """Decode with Pillow -> (H, W) or (H, W, C) array."""
    with _decoding(label, kind):
        # Constructing the plugin directly skips Image.open's global MAX_IMAGE_PIXELS check
        # (warning above ~89 Mpx, error above ~179 Mpx) so that max_pixels alone decides.
        picture = _PIL_OPENERS[kind](stream)
    with picture:
        bands = len(picture.getbands())
        _check_extent(label, 1, picture.height, picture.width, bands, 4, limits)
        frames = getattr(picture, "n_frames", 1)
        if frames > 1:
            raise ImageError(
                f"Cannot read {label}: it is an animated {kind} with {frames} frames, which is not "
                "supported. Save the frames as a multi-page TIFF instead."
            )
        with _decoding(label, kind):
            # The full decode, where truncation raises (Pillow's LOAD_TRUNCATED_IMAGES stays off).
            picture.load()
            return _pil_pixels(picture, label)


def _pil_pixels(picture: Image.Image, label: str) -> np.ndarray:
    mode = picture.mode
    if mode in ("P", "PA"):
        target = "L" if _palette_is_grey(picture) else "RGB"
        picture = picture.convert("RGBA" if mode == "PA" else target)
        if mode == "PA":
            picture = picture.convert(target)
    elif mode in _PIL_CONVERT:
        picture = picture.convert(_PIL_CONVERT[mode])
    elif mode not in _PIL_KEEP:
        raise ImageError(
            f"Cannot read {label}: pixel mode {mode!r} is not supported. Export it as 8- or 16-bit "
            "greyscale or RGB."
        )
    return np.asarray(picture)


def _palette_is_grey(picture: Image.Image) -> bool:
    palette = picture.getpalette()
    if not palette:
        return True
    rgb = np.asarray(palette, dtype=np.int32)[: len(palette) // 3 * 3].reshape(-1, 3)
    return bool((rgb == rgb[:, :1]).all())


# --- tifffile: TIFF, ImageJ hyperstacks, OME-TIFF ---------------------------------------------


def _read_tiff(stream: BinaryIO, label: str, limits: _Limits) -> np.ndarray:
    """Decode the first TIFF series -> (T, H, W, C) array."""
    with _decoding(label, "TIFF"), tifffile.TiffFile(stream) as tif:
        _check_page_count(tif, label, limits)
        if not tif.series:
            raise ImageError(f"Cannot read {label}: the TIFF holds no image data.")
        series = tif.series[0]
        layout = _TiffLayout.plan(series, label)
        _check_extent(
            label, layout.frames, layout.height, layout.width, layout.channels,
            layout.itemsize, limits,
        )
        _check_imagej_complete(tif, layout, label)
        keyframe = series.keyframe
        if _tifffile_can_decode(keyframe):
            data = series.asarray(maxworkers=1)
        elif len(tif.pages) == 1 and layout.frames == 1:
            data = None  # decoded by Pillow below, once tifffile has let go of the stream
        else:
            raise ImageError(
                f"Cannot read {label}: its {keyframe.compression.name} compression needs the "
                "'imagecodecs' package for multi-page TIFFs. Install it (pip install "
                "imagecodecs) or save the stack uncompressed or with zlib/deflate compression."
            )
    if data is None:
        stream.seek(0)
        return _read_tiff_with_pil(stream, label, limits)
    return layout.to_frames(data, label)


def _check_page_count(tif: tifffile.TiffFile, label: str, limits: _Limits) -> None:
    """Refuse a file with a huge chain of pages before tifffile parses every one of them."""
    cap = limits.max_frames * _PAGES_PER_FRAME
    try:
        tif.pages[cap]  # walks the chain of page offsets only as far as the cap
    except IndexError:
        return
    raise ImageError(
        f"Cannot read {label}: the TIFF has more than {cap:,} pages ({_PAGES_PER_FRAME} per "
        f"frame of max_frames={limits.max_frames:,}). Open a subset of the frames, or raise the "
        "limit with max_frames=..."
    )


def _check_imagej_complete(tif: tifffile.TiffFile, layout: _TiffLayout, label: str) -> None:
    """A truncated ImageJ stack silently shrinks to the pages left: compare with its header."""
    if not tif.is_imagej:
        return
    declared = (tif.imagej_metadata or {}).get("images")
    found = math.prod(n for axis, n in zip(layout.axes, layout.shape) if axis not in "YXS")
    if isinstance(declared, int) and declared != found:
        raise ImageError(
            f"Cannot read {label}: its ImageJ header declares {declared} images but {found} were "
            "found; the file is truncated or corrupt. Save it again from ImageJ/Fiji."
        )


def _tifffile_can_decode(page: Any) -> bool:
    codec_ok = page.compression in tifffile.TIFF.DECOMPRESSORS
    predictor_ok = page.predictor in (0, 1) or page.predictor in tifffile.TIFF.UNPREDICTORS
    return codec_ok and predictor_ok


def _read_tiff_with_pil(stream: BinaryIO, label: str, limits: _Limits) -> np.ndarray:
    """Single-page TIFF whose codec (LZW, PackBits, JPEG) tifffile lacks: decode with libtiff."""
    with _decoding(label, "TIFF"):
        picture = TiffImagePlugin.TiffImageFile(stream)
    with picture:
        bands = len(picture.getbands())
        _check_extent(label, 1, picture.height, picture.width, bands, 4, limits)
        pil_limit = Image.MAX_IMAGE_PIXELS
        if pil_limit is not None and picture.width * picture.height > pil_limit:
            # Pillow's TIFF loader applies its own global limit; stay below it rather than warn.
            raise ImageError(
                f"Cannot read {label}: it is {picture.width}×{picture.height} pixels and "
                "compressed with a codec that needs the 'imagecodecs' package at this size. "
                "Install it (pip install imagecodecs) or save the image uncompressed."
            )
        with _decoding(label, "TIFF"):
            picture.load()
            return _pil_pixels(picture, label)


@dataclass(frozen=True)
class _TiffLayout:
    """How a tifffile series maps onto (T, H, W, C)."""

    axes: str
    shape: tuple[int, ...]
    itemsize: int
    frame_axes: tuple[int, ...]
    channel_axes: tuple[int, ...]
    alpha: tuple[int, ...]  # sample indices that are alpha, dropped
    colormap: np.ndarray | None  # (3, N) for palette images, applied to the indices
    white_is_zero: int | None  # max value for MINISWHITE integer images, which are inverted

    @classmethod
    def plan(cls, series: Any, label: str) -> _TiffLayout:
        axes, shape, dtype = series.axes, tuple(int(n) for n in series.shape), series.dtype
        if dtype is None or np.dtype(dtype).kind not in "biuf":
            raise ImageError(
                f"Cannot read {label}: TIFF pixels of type {dtype} are not supported (complex or "
                "unknown). Save real-valued 8/16-bit integer or float32 pixels."
            )
        if axes.count("Y") != 1 or axes.count("X") != 1:
            raise ImageError(
                f"Cannot read {label}: TIFF axes {axes!r} have no single Y and X axis."
            )
        frame_axes, channel_axes = [], []
        for index, (axis, size) in enumerate(zip(axes, shape)):
            if axis in "YX" or size == 1:
                continue
            if axis in _FRAME_AXES:
                frame_axes.append(index)
            elif axis in _CHANNEL_AXES:
                channel_axes.append(index)
            else:
                raise ImageError(
                    f"Cannot read {label}: TIFF axis {axis!r} (of axes {axes!r}, shape {shape}) "
                    "cannot be mapped to frames or channels. Save it as an ImageJ hyperstack "
                    "with axes TZCYX (extra dimensions split into separate files)."
                )
        if len(frame_axes) > 2 or len(channel_axes) > 2:
            raise ImageError(
                f"Cannot read {label}: TIFF axes {axes!r} with shape {shape} have too many "
                "dimensions to map to frames × height × width × channels. Save it with axis "
                "metadata (e.g. an ImageJ hyperstack TZCYX) or split it into several files."
            )
        keyframe = series.keyframe
        return cls(
            axes=axes,
            shape=shape,
            itemsize=np.dtype(dtype).itemsize,
            frame_axes=tuple(frame_axes),
            channel_axes=tuple(channel_axes),
            alpha=_alpha_samples(keyframe, axes, shape),
            colormap=_palette(keyframe, channel_axes, dtype),
            white_is_zero=_white_value(keyframe, dtype),
        )

    @property
    def frames(self) -> int:
        return math.prod(self.shape[i] for i in self.frame_axes)

    @property
    def height(self) -> int:
        return self.shape[self.axes.index("Y")]

    @property
    def width(self) -> int:
        return self.shape[self.axes.index("X")]

    @property
    def channels(self) -> int:
        if self.colormap is not None:
            return 3
        return math.prod(self.shape[i] for i in self.channel_axes) - len(self.alpha)

    def to_frames(self, data: np.ndarray, label: str) -> np.ndarray:
        if data.shape != self.shape:
            raise ImageError(
                f"Cannot read {label}: its TIFF data has shape {data.shape} but its header "
                f"declares {self.shape}; the file is corrupt. Save it again."
            )
        if self.alpha:
            data = np.delete(data, self.alpha, axis=self.axes.index("S"))
        rest = [i for i in range(data.ndim) if i not in self.frame_axes + self.channel_axes]
        y, x = self.axes.index("Y"), self.axes.index("X")
        order = [*self.frame_axes, y, x, *self.channel_axes, *(i for i in rest if i not in (y, x))]
        height, width = data.shape[y], data.shape[x]
        frames = np.ascontiguousarray(data.transpose(order)).reshape(self.frames, height, width, -1)
        if self.white_is_zero is not None:
            frames = ~frames if frames.dtype == bool else self.white_is_zero - frames
        if self.colormap is not None:
            frames = self.colormap.T[np.clip(frames[..., 0], 0, self.colormap.shape[1] - 1)]
        return frames


def _alpha_samples(keyframe: Any, axes: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    extras = tuple(int(e) for e in (getattr(keyframe, "extrasamples", None) or ()))
    if "S" not in axes or not extras:
        return ()
    samples = shape[axes.index("S")]
    first_extra = samples - len(extras)
    if first_extra < 1:  # no colour sample would be left: keep everything
        return ()
    return tuple(first_extra + i for i, kind in enumerate(extras) if kind in _ALPHA_EXTRASAMPLES)


def _palette(keyframe: Any, channel_axes: list[int], dtype: Any) -> np.ndarray | None:
    colormap = getattr(keyframe, "colormap", None)
    if keyframe.photometric != tifffile.PHOTOMETRIC.PALETTE or colormap is None or channel_axes:
        return None
    if np.dtype(dtype).kind not in "iu":  # only integers index a colour table
        return None
    colormap = np.asarray(colormap)
    if colormap.ndim != 2 or colormap.shape[0] != 3:
        return None
    if colormap.max(initial=0) <= 255:
        return colormap.astype(np.uint8)
    if not (colormap % 257).any():  # 8-bit colours stored as 16-bit, the usual case
        return (colormap // 257).astype(np.uint8)
    return colormap.astype(np.uint16)


def _white_value(keyframe: Any, dtype: Any) -> int | None:
    if keyframe.photometric != tifffile.PHOTOMETRIC.MINISWHITE:
        return None
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return 1
    if dtype.kind != "u":
        return None  # signed or float "white is zero" data has no agreed maximum: left as is
    bits = min(int(keyframe.bitspersample), dtype.itemsize * 8)
    return (1 << bits) - 1


# --------------------------------------------------------------------------------------------
# Layout and dtype


def as_frames(image: np.ndarray) -> np.ndarray:
    """Return ``image`` in the ``(T, H, W, C)`` layout with a supported dtype.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` greyscale, ``(H, W, C)`` channels last (C <= 64), or ``(T, H, W, C)``.

    Returns
    -------
    frames : (T, H, W, C) ndarray of uint8, uint16 or float32
        A view of ``image`` when its dtype is already supported. bool becomes uint8 0/255;
        other integers become uint16 when every value fits 0..65535 (uint8 for non-negative
        int8), else float32; float16/float64 become float32.

    Raises
    ------
    ImageError
        Wrong number of dimensions, an empty axis, more than 64 channels, complex or
        non-numeric values, or NaN/inf.
    """
    return _to_frames(image, "the image")


def _to_frames(image: Any, label: str) -> np.ndarray:
    array = np.asarray(image)
    frames, height, width, channels = _frames_shape(array.shape, label)
    if 0 in (frames, height, width, channels):
        raise ImageError(f"Cannot use {label}: it has an empty axis (shape {array.shape}).")
    if channels > MAX_CHANNELS:
        hint = ""
        if array.ndim == 3:
            hint = " If the first axis holds frames, pass image[..., None] (T, H, W, 1)."
        raise ImageError(
            f"Cannot use {label}: {channels} channels (shape {array.shape}) exceed the limit of "
            f"{MAX_CHANNELS}; channels go last.{hint}"
        )
    return _supported_dtype(array.reshape(frames, height, width, channels), label)


def _frames_shape(shape: tuple[int, ...], label: str) -> tuple[int, int, int, int]:
    if len(shape) == 2:
        return (1, *shape, 1)
    if len(shape) == 3:
        return (1, *shape)
    if len(shape) == 4:
        return shape  # type: ignore[return-value]
    raise ImageError(
        f"Cannot use {label}: it has {len(shape)} dimensions (shape {shape}); expected (H, W), "
        "(H, W, C) or (T, H, W, C)."
    )


def _supported_dtype(array: np.ndarray, label: str) -> np.ndarray:
    """Convert to uint8, uint16 or finite float32 (no copy when already one of them)."""
    dtype = array.dtype
    if dtype.kind == "u" and dtype.itemsize in (1, 2):
        return array.astype(dtype.newbyteorder("="), copy=False)
    if dtype.kind == "b":
        return array.astype(np.uint8) * np.uint8(255)
    if dtype.kind in "iu":
        low, high = int(array.min()), int(array.max())
        if low >= 0 and high <= 255 and dtype.itemsize == 1:
            return array.astype(np.uint8)
        if low >= 0 and high <= 65535:
            return array.astype(np.uint16)
        return array.astype(np.float32)
    if dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):  # overflow shows up as inf below
            floats = array.astype(np.float32, copy=False)
        if not np.isfinite(floats).all():
            bad = int(np.count_nonzero(~np.isfinite(floats)))
            raise ImageError(
                f"Cannot use {label}: {bad:,} of {floats.size:,} values are NaN, infinite or "
                "beyond the float32 range. Replace them (e.g. numpy.nan_to_num) and save the "
                "image again."
            )
        return floats
    raise ImageError(
        f"Cannot use {label}: pixels of type {dtype} are not supported. Use 8/16-bit integers or "
        "real floats."
    )


# --------------------------------------------------------------------------------------------
# Normalisation

_MODES = ("percentile", "dtype", "none")


@dataclass(frozen=True)
class Normalization:
    """How raw intensities are scaled before features are computed.

    Parameters
    ----------
    mode : {"percentile", "dtype", "none"}
        ``"percentile"``: per channel, ``(x - p_low) / (p_high - p_low)`` with robust
        percentiles of that frame (not clipped). ``"dtype"``: divide by the dtype maximum
        (uint8 255, uint16 65535; floats unchanged). ``"none"``: raw values as float32.
    low, high : float
        Percentiles in percent, ``0 <= low < high <= 100``; used by ``"percentile"`` only.
    """

    mode: str = "percentile"
    low: float = 0.5
    high: float = 99.5

    def __post_init__(self) -> None:
        if not isinstance(self.mode, str) or self.mode not in _MODES:
            raise SettingsError(
                f"Normalization mode must be one of {', '.join(_MODES)}; got {self.mode!r}"
            )
        low, high = _percent(self.low, "low"), _percent(self.high, "high")
        if not low < high:
            raise SettingsError(
                f"Normalization low percentile ({low}) must be below high ({high}), "
                "e.g. 0.5 and 99.5"
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible form, the inverse of :meth:`from_dict`."""
        return {"mode": self.mode, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalization:
        """Build from :meth:`to_dict` output (e.g. read from a model file, so untrusted).

        Missing keys take their defaults; unknown keys or wrong types raise SettingsError.
        """
        if not isinstance(data, Mapping):
            raise SettingsError(
                f"Normalization settings must be a mapping, got {type(data).__name__}"
            )
        unknown = sorted(str(key) for key in data if key not in ("mode", "low", "high"))
        if unknown:
            raise SettingsError(
                f"Unknown Normalization setting(s) {', '.join(unknown)}; expected mode, low, high"
            )
        return cls(**data)


def _percent(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SettingsError(f"Normalization {name} must be a number of percent, got {value!r}")
    value = float(value)
    if not 0.0 <= value <= 100.0:  # also refuses NaN
        raise SettingsError(f"Normalization {name} must be between 0 and 100 percent, got {value}")
    return value


def normalize(frame: np.ndarray, normalization: Normalization = Normalization()) -> np.ndarray:
    """Scale one frame's intensities to roughly [0, 1] as ``normalization`` says.

    Parameters
    ----------
    frame : (H, W, C) or (H, W) ndarray
        Any dtype :func:`as_frames` accepts.
    normalization : Normalization
        Percentile mode estimates each channel's percentiles from a deterministic lattice of at
        most 262 144 pixels (all pixels of smaller frames); results are not clipped, so the
        brightest 0.5 % keep their contrast for the features. A channel whose percentiles
        coincide uses its min/max instead; a constant channel becomes 0.

    Returns
    -------
    normalised : ndarray of float32, same shape as ``frame``
        A new array. The uint8 version of a scene and its uint16 version (values x 257 or x 256)
        give the same result in percentile mode.
    """
    if not isinstance(normalization, Normalization):
        raise TypeError(
            f"normalization must be a Normalization, got {type(normalization).__name__}"
        )
    array = np.asarray(frame)
    if array.ndim not in (2, 3) or 0 in array.shape:
        raise ImageError(f"normalize needs an (H, W) or (H, W, C) frame, got shape {array.shape}")
    planes = _supported_dtype(array if array.ndim == 3 else array[..., None], "the frame")
    out = planes.astype(np.float32, order="C")  # a fresh C-ordered copy, scaled in place below
    if normalization.mode == "dtype" and planes.dtype.kind == "u":
        out /= np.float32(np.iinfo(planes.dtype).max)
    elif normalization.mode == "percentile":
        statistics = _percentile_statistics(planes, normalization)
        _stretch_inplace(out, statistics[:, 0], statistics[:, 1])
    return out if array.ndim == 3 else out[..., 0]


def normalization_statistics(frame: np.ndarray, normalization: Normalization) -> np.ndarray | None:
    """The per-channel parameters :func:`normalize` uses for a whole frame.

    Tiles of a huge frame must be normalised with the whole frame's statistics, not their own.

    Parameters
    ----------
    frame : (H, W) or (H, W, C) array
        uint8, uint16 or float32 (a ``np.memmap`` is only sampled, plus a min/max pass over a
        channel whose percentiles coincide).
    normalization : Normalization

    Returns
    -------
    (C, 2) float64 array or None
        ``[offset, scale]`` per channel in percentile mode, so that ``normalize(frame)`` equals
        ``(frame - offset) * scale`` computed in float32; ``None`` for the modes that act pixel by
        pixel ("dtype", "none"), where any window can be normalised on its own.
    """
    if normalization.mode != "percentile":
        return None
    # No dtype conversion pass here: the frame may be a memory-mapped huge image (only sampled).
    planes = frame if frame.ndim == 3 else frame[..., None]
    return _percentile_statistics(planes, normalization)


def _percentile_statistics(planes: np.ndarray, normalization: Normalization) -> np.ndarray:
    """(C, 2) [offset, scale]: robust percentiles; flat channels fall back to min/max, then 0."""
    low, high = _percentiles(planes, normalization.low, normalization.high)
    for channel in np.flatnonzero(high <= low):  # e.g. sparse bright spots on an even background
        low[channel] = planes[..., channel].min()
        high[channel] = planes[..., channel].max()
    span = high - low
    scale = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)
    return np.stack([low, scale], axis=1)


def _stretch_inplace(out: np.ndarray, low: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """out = (out - low) * scale per channel, in float32."""
    height, width, channels = out.shape
    # Broadcasting a length-C vector is slow (inner loop of C); tile it along whole rows instead.
    rows = out.reshape(height, width * channels)
    rows -= np.tile(low.astype(np.float32), width)
    rows *= np.tile(scale.astype(np.float32), width)
    return out


def _percentiles(planes: np.ndarray, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (low, high) percentiles, float64, from a position-based pixel sample."""
    height, width, channels = planes.shape
    step = _sample_step(height * width, width)
    sample = planes.reshape(height * width, channels)[::step]
    if planes.dtype.kind == "u":
        per_channel = [_integer_percentiles(sample[:, c], (low, high)) for c in range(channels)]
        bounds = np.stack(per_channel, axis=1)
    else:
        # One contiguous row per channel: numpy's selection along a strided axis is slower.
        rows = np.ascontiguousarray(sample.T, dtype=np.float64)
        bounds = np.percentile(rows, [low, high], axis=1)
    return bounds[0].copy(), bounds[1].copy()


def _sample_step(pixels: int, width: int) -> int:
    """Stride through the raster giving <= _PERCENTILE_SAMPLES pixels on a slanted lattice.

    The stride depends on the shape only, so the same scene in another dtype samples the same
    pixels; being coprime with the width, it does not sample the same columns in every row.
    """
    step = max(1, -(-pixels // _PERCENTILE_SAMPLES))
    while step > 1 and math.gcd(step, width) != 1:
        step += 1
    return step


def _integer_percentiles(values: np.ndarray, percents: tuple[float, float]) -> np.ndarray:
    """numpy's linear-interpolation percentiles, from a histogram instead of a sort."""
    cumulative = np.cumsum(np.bincount(values))
    positions = np.asarray(percents) / 100.0 * (values.size - 1)
    below = np.floor(positions)
    above = np.minimum(below + 1, values.size - 1)
    value_below = np.searchsorted(cumulative, below, side="right").astype(np.float64)
    value_above = np.searchsorted(cumulative, above, side="right").astype(np.float64)
    return value_below + (value_above - value_below) * (positions - below)


# --------------------------------------------------------------------------------------------
# Identity and description


def image_digest(image: np.ndarray) -> str:
    """Hex digest of an image's values, shape and dtype, e.g. as a cache key.

    Parameters
    ----------
    image : ndarray
        Any array; non-contiguous views hash like their contiguous copy.

    Returns
    -------
    digest : str
        32 hex characters (BLAKE2b, 16 bytes).
    """
    array = np.ascontiguousarray(image)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.view(np.uint8).reshape(-1) if array.size else b"")
    return digest.hexdigest()


def describe(image: np.ndarray) -> str:
    """One-line summary for status lines: ``"3 frames · 640×480 px · 2 channels · uint16"``.

    The size is width × height, as image viewers show it. ``image`` is (H, W), (H, W, C) or
    (T, H, W, C).
    """
    frames, height, width, channels = _frames_shape(np.shape(image), "the image")
    return (
        f"{frames} frame{'s' if frames != 1 else ''} · {width}×{height} px · "
        f"{channels} channel{'s' if channels != 1 else ''} · {np.asarray(image).dtype}"
    )
