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

Modules
-------
``frames``         the ``(T, H, W, C)`` layout and dtype rules (:func:`as_frames`),
                   :func:`image_digest`, :func:`describe`
``guards``         size limits checked on the declared size; decoder errors -> ImageError
``read``           :func:`read_image`: open the source, sniff the format, dispatch
``pillow``         PNG, JPEG, BMP via Pillow
``tiff``           TIFF via tifffile: axes -> frames and channels, alpha, palettes
``normalization``  :class:`Normalization`, :func:`normalize`, :func:`normalization_statistics`

Every public name is importable from ``seg.images`` itself. Patch a name in the module that
uses it, not here.
"""

from __future__ import annotations

# Re-exports: callers import all of these from seg.images as they did before it was split.
from seg.images.frames import MAX_CHANNELS, as_frames, describe, image_digest
from seg.images.guards import DEFAULT_MAX_FRAMES, DEFAULT_MAX_PIXELS, MIN_SIDE
from seg.images.normalization import Normalization, normalization_statistics, normalize
from seg.images.read import IMAGE_SUFFIXES, read_image

__all__ = [
    "IMAGE_SUFFIXES",
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
