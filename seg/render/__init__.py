"""Turn images, labels and probabilities into pixels and files for people to look at.

Everything here is on the path from a finished stroke to the overlay the browser shows, so it is
written for speed: lookup tables instead of per-pixel arithmetic in float64, statistics on a
deterministic subsample, low PNG compression for display images.

Conventions (see ``contract.md``):

- Display images are ``(H, W, 3) uint8`` RGB.
- Labels are non-negative integer arrays, ``0`` = unlabelled, ``1..K`` = classes; ``colors[i]``
  is the colour of label ``i + 1``. Labels without a colour get :func:`color_for` of their index.
- Colours are lowercase ``"#rrggbb"`` strings; :func:`parse_color` also reads the ``"#rgb"``,
  ``"rgb(...)"`` and ``"rgba(...)"`` forms that canvas JSON and hand-edited files contain.
- Sizes are ``(height, width)`` like numpy shapes, never PIL's ``(width, height)``.

Modules
-------
``colors``    :data:`PALETTE`, :func:`color_for`, :func:`parse_color`: class colours
``overlays``  :func:`colorize`, :func:`blend`, :func:`blend_images`, :func:`outline`, :func:`draw_boxes`
``heatmaps``  :func:`heatmap` with the :data:`COLORMAPS`
``display``   :func:`to_display_rgb`: any frame as 8-bit RGB (channels, contrast stretch)
``resize``    :func:`display_size`, :func:`resize_rgb`, :func:`resize_labels`
``encoding``  :func:`encode_png`, :func:`encode_jpeg`, :func:`overlay_png`, :func:`mask_file`,
              :func:`probabilities_tiff`: bytes for the browser and for downloads

Every public name is importable from ``seg.render`` itself.
"""

from __future__ import annotations

# Re-exports: callers import these from seg.render as they did before the module was split.
from seg.render.colors import PALETTE, color_for, default_colors, normalize_color, parse_color, parse_rgba
from seg.render.display import to_display_rgb
from seg.render.encoding import encode_jpeg, encode_png, mask_file, overlay_png, probabilities_tiff
from seg.render.heatmaps import COLORMAPS, heatmap
from seg.render.overlays import blend, blend_images, colorize, draw_boxes, outline
from seg.render.resize import display_size, resize_labels, resize_rgb

__all__ = [
    "PALETTE",
    "COLORMAPS",
    "color_for",
    "default_colors",
    "parse_color",
    "parse_rgba",
    "normalize_color",
    "to_display_rgb",
    "display_size",
    "resize_rgb",
    "resize_labels",
    "colorize",
    "blend",
    "blend_images",
    "outline",
    "draw_boxes",
    "heatmap",
    "encode_png",
    "encode_jpeg",
    "overlay_png",
    "mask_file",
    "probabilities_tiff",
]
