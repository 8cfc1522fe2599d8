"""App-wide limits and texts, in one place so that a deployment can change them.

The upload size limit itself lives in ``.streamlit/config.toml`` (``server.maxUploadSize``, MB):
Streamlit refuses bigger files before any of our code runs.
"""

from __future__ import annotations

#: Largest frame the app accepts (rows * columns). Bigger images belong to ``python -m seg apply``.
MAX_FRAME_PIXELS: int = 16_000_000

#: Largest image or stack the app accepts (frames * rows * columns).
MAX_TOTAL_PIXELS: int = 64_000_000

#: Frames larger than this open with live update off (draw several strokes, then press Update).
LIVE_MAX_PIXELS: int = 4_000_000

#: Longest side of the drawing canvas in screen pixels. Labels and predictions stay at full
#: resolution; only the picture under the pen is resized.
DISPLAY_MAX_SIDE: int = 760

#: Small images are enlarged on screen by at most this factor, so there is room to draw.
MAX_UPSCALE: float = 2.0

#: Feature stacks kept in memory per session (the labelled frames and the current one are kept
#: first; this bounds memory for long stacks with scribbles on many frames).
MAX_CACHED_FEATURE_BYTES: int = 1_500_000_000

#: Encoded canvas backgrounds kept per session (view/opacity toggles are then instant).
MAX_CACHED_BACKGROUNDS: int = 8

HINT: str = (
    "Draw a few strokes on each class; the segmentation updates after every stroke. "
    "Pick the class in the sidebar; undo, redo and clear with the canvas's own toolbar. "
    "Reloading the page starts a fresh session: download the annotations (Downloads) "
    "to resume later by uploading them again."
)
