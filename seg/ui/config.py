"""App-wide limits and texts, in one place so that a deployment can change them.

The upload size limit itself lives in ``.streamlit/config.toml`` (``server.maxUploadSize``, MB):
Streamlit refuses bigger files before any of our code runs.
"""

from __future__ import annotations

#: Largest frame the app opens (rows * columns): a guard against hostile files (checked from the
#: header before decoding), not a limit for ordinary images. Memory grows with the view and the
#: annotations, plus the image itself (1 byte per pixel and channel at 8 bits) and its display copy.
MAX_FRAME_PIXELS: int = 1_000_000_000

#: Largest image or stack the app opens (frames * rows * columns).
MAX_TOTAL_PIXELS: int = 2_000_000_000

#: Frames up to this size keep their whole feature stack in memory (as before viewports: every
#: view and download reads it). Larger frames get their features tile by tile, where the view and
#: the strokes need them (seg.features.tiles), and are predicted whole only on demand.
WHOLE_FEATURES_MAX_PIXELS: int = 4_000_000

#: Bytes of feature tiles kept per large frame (least recently used dropped first; 10 tiles of
#: 512 px with 40 features: the 4-9 under a 1:1 view plus one). The overlay
#: is live while the tiles under the viewport fit (at 1:1 a 760-pixel view needs 4-9 tiles of
#: 512 px, 42 MB each with 40 features); zoomed further out the app shows the last whole-frame
#: segmentation and offers "Segment whole image".
MAX_CACHED_TILE_BYTES: int = 420_000_000

#: Bytes of whole-frame class probabilities kept for a large frame (uint8, 1 byte per pixel and
#: class: a 100-megapixel frame of 4 classes). They feed the probabilities download and the
#: objects' mean probability; above it "Segment whole image" keeps the labels only and the
#: probabilities are left to ``python -m seg apply --proba``.
MAX_WHOLE_PROBA_BYTES: int = 400_000_000

#: Largest frame (rows * columns) whose objects the app finds: the watershed holds about 13
#: bytes per pixel while it runs (mask, components, instances, hole search), 330 MB at this size.
#: Larger frames: ``python -m seg apply --objects``.
MAX_OBJECT_PIXELS: int = 25_000_000

#: Longest side of the drawing canvas in screen pixels. Labels and predictions stay at full
#: resolution; only the picture under the pen is resized.
DISPLAY_MAX_SIDE: int = 760

#: Small images are enlarged on screen by at most this factor, so there is room to draw.
MAX_UPSCALE: float = 2.0

#: Feature stacks kept in memory per session (the labelled frames and the current one are kept
#: first; this bounds memory for long stacks with scribbles on many frames).
MAX_CACHED_FEATURE_BYTES: int = 1_500_000_000

#: Largest volume the app opens (voxels x channels): a session keeps it normalised as float32
#: (4 bytes a value) beside the voxels, and the whole-volume labels once segmented.
MAX_VOLUME_VALUES: int = 100_000_000

#: Largest volume whose class probabilities the whole-volume pass keeps and offers for download
#: (voxels x classes, uint8: at most 100 MB a session; beyond it: `python -m seg apply --probabilities`).
MAX_VOLUME_PROBABILITY_VALUES: int = 100_000_000

#: Encoded canvas backgrounds kept per session (view/opacity toggles are then instant).
MAX_CACHED_BACKGROUNDS: int = 8

HINT: str = (
    "Draw a few strokes on each class; the segmentation updates after every stroke. "
    "Pick the class in the sidebar; undo, redo and clear with the canvas's own toolbar. "
    "Reloading the page starts a fresh session: download the annotations (Downloads) "
    "to resume later by uploading them again."
)
