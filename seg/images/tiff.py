"""Decoding TIFF with tifffile: plain multi-page files, ImageJ hyperstacks, OME-TIFF.

:class:`_TiffLayout` maps the first series' axes onto ``(T, H, W, C)`` (frame axes T, Z, I, Q;
channel axes C, S, E), drops alpha samples, applies palettes and inverts "white is zero" data.
Page and tag counts (:mod:`seg.images.prescan`, before tifffile opens the file) and the declared
size are checked before any pixel is decoded. A single-page TIFF
whose codec tifffile lacks is decoded by Pillow instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import tifffile
from PIL import Image, TiffImagePlugin

from seg.errors import ImageError
from seg.images.guards import Limits, check_extent, decoding
from seg.images.pillow import pil_pixels

# tifffile axis codes: T time, Z depth, I page index, Q unknown / C channel, S sample, E lambda.
_FRAME_AXES = "TZIQ"
_CHANNEL_AXES = "CSE"
_ALPHA_EXTRASAMPLES = (1, 2)  # TIFF ExtraSamples: associated and unassociated alpha


def read_tiff(stream: BinaryIO, label: str, limits: Limits) -> np.ndarray:
    """Decode the first TIFF series -> (T, H, W, C) array."""
    with decoding(label, "TIFF"), tifffile.TiffFile(stream) as tif:
        if not tif.series:
            raise ImageError(f"Cannot read {label}: the TIFF holds no image data.")
        series = tif.series[0]
        layout = _TiffLayout.plan(series, label)
        check_extent(
            label,
            layout.frames,
            layout.height,
            layout.width,
            layout.channels,
            layout.itemsize,
            limits,
        )
        _check_imagej_complete(tif, layout, label)
        keyframe = series.keyframe
        if _tifffile_can_decode(keyframe):
            data = series.asarray(maxworkers=1)
        elif len(tif.pages) == 1 and layout.frames == 1:
            data = None  # decoded by Pillow below, once tifffile has let go of the stream
        else:
            raise ImageError(
                f"Cannot read {label}: its {_compression_name(keyframe.compression)} compression needs the "
                "'imagecodecs' package for multi-page TIFFs. Install it (pip install "
                "imagecodecs) or save the stack uncompressed or with zlib/deflate compression."
            )
    if data is None:
        stream.seek(0)
        return _read_tiff_with_pil(stream, label, limits)
    return layout.to_frames(data, label)


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


def _read_tiff_with_pil(stream: BinaryIO, label: str, limits: Limits) -> np.ndarray:
    """Single-page TIFF whose codec (LZW, PackBits, JPEG) tifffile lacks: decode with libtiff."""
    with decoding(label, "TIFF"):
        picture = TiffImagePlugin.TiffImageFile(stream)
    with picture:
        bands = len(picture.getbands())
        check_extent(label, 1, picture.height, picture.width, bands, 4, limits)
        pil_limit = Image.MAX_IMAGE_PIXELS
        if pil_limit is not None and picture.width * picture.height > pil_limit:
            # Pillow's TIFF loader applies its own global limit; stay below it rather than warn.
            raise ImageError(
                f"Cannot read {label}: it is {picture.width}×{picture.height} pixels and "
                "compressed with a codec that needs the 'imagecodecs' package at this size. "
                "Install it (pip install imagecodecs) or save the image uncompressed."
            )
        with decoding(label, "TIFF"):
            picture.load()
            return pil_pixels(picture, label)


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
            raise ImageError(f"Cannot read {label}: TIFF axes {axes!r} have no single Y and X axis.")
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


def _compression_name(code: Any) -> str:
    """tifffile's name of a compression, or its number when tifffile does not know it."""
    return str(getattr(code, "name", code))
