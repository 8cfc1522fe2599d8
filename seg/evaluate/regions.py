"""Where to label next: the few regions where one more stroke is likely to help most.

Two kinds of region, strokes first:

- a *misclassified stroke*: a scribble that the forest, retrained without it, mostly labels as
  another class (from :func:`seg.evaluate.estimate_accuracy`): the classifier does not yet know
  that kind of structure, so more strokes of it are needed;
- an *uncertain* window: a square where the forest's mean uncertainty
  (:func:`seg.model.uncertainty`, 1 - margin of the two best classes) is highest; windows are
  picked greedily and never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from seg.errors import ImageError, SettingsError, is_whole_number

__all__ = ["MISCLASSIFIED_BELOW", "Region", "label_next"]

MISCLASSIFIED_BELOW = 0.5
"""A held-out stroke with accuracy under this is listed as misclassified."""


@dataclass(frozen=True)
class Region:
    """A box to look at, in image pixels.

    Attributes
    ----------
    frame : int
    row0, col0, row1, col1 : int
        Box rows ``row0:row1`` and columns ``col0:col1`` (end exclusive).
    reason : {"misclassified stroke", "uncertain"}
    score : float
        For a stroke: 1 - its held-out accuracy; for a window: its mean uncertainty. In [0, 1].
    """

    frame: int
    row0: int
    col0: int
    row1: int
    col1: int
    reason: str
    score: float

    @property
    def center(self) -> tuple[int, int]:
        """(row, col) of the box centre."""
        return (self.row0 + self.row1) // 2, (self.col0 + self.col1) // 2

    def describe(self) -> str:
        """E.g. ``"uncertain (0.62) at rows 120–184, columns 30–94"``."""
        frame = f"frame {self.frame}, " if self.frame else ""
        return (
            f"{self.reason} ({self.score:.2f}) at {frame}rows {self.row0}–{self.row1}, columns {self.col0}–{self.col1}"
        )


def label_next(
    uncertainty: np.ndarray,
    report=None,
    *,
    count: int = 5,
    window: int | None = None,
    frame: int = 0,
    step: int = 1,
    shape: tuple[int, int] | None = None,
    grid: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[Region]:
    """The few regions most worth a new stroke, most useful first.

    Parameters
    ----------
    uncertainty : (H, W) float array in [0, 1]
        Per-pixel uncertainty of the current model on ``frame`` (:func:`seg.model.uncertainty`).
    report : AccuracyReport, optional
        From :func:`seg.evaluate.estimate_accuracy`; its misclassified held-out strokes of
        ``frame`` come first.
    count : int
        Regions returned at most (1..50).
    window : int, optional
        Side of the uncertain windows in pixels; default an eighth of the shorter side, at least 16.
    frame : int
        Frame the uncertainty belongs to.
    step : int
        ``uncertainty`` holds every ``step``-th pixel of each axis (a cheap coarse map of a large
        frame, e.g. ``uncertainty(proba_of(features[::step, ::step]))``); regions are in full
        image pixels all the same.
    shape : (H, W), optional
        The frame's size (default: the map's size times ``step``); boxes are clipped to it.
    grid : ((h,) int array, (w,) int array), optional
        Instead of ``step``: the image row of every row of ``uncertainty`` and the image column of
        every column, increasing (e.g. the pixels a zoomed viewport shows,
        :meth:`seg.viewport.Viewport.display_rows`). A box then reaches from its first map
        pixel's image pixel to the one before the next map pixel's.

    Returns
    -------
    list of Region
    """
    uncertainty = np.asarray(uncertainty)
    if uncertainty.ndim != 2 or not np.issubdtype(uncertainty.dtype, np.floating) or uncertainty.size == 0:
        raise ImageError(
            f"label_next needs an (H, W) float uncertainty map, got {uncertainty.dtype} {uncertainty.shape}"
        )
    if not is_whole_number(count, 1, 50):
        raise SettingsError(f"count must be a whole number from 1 to 50, got {count!r}")
    if not is_whole_number(step, 1):
        raise SettingsError(f"step must be a whole number >= 1, got {step!r}")
    step = int(step)
    if grid is None:
        height, width = shape if shape is not None else (uncertainty.shape[0] * step, uncertainty.shape[1] * step)
        grid = (np.arange(uncertainty.shape[0]) * step, np.arange(uncertainty.shape[1]) * step)
        ends = (height, width)  # the last map pixel stands for the rows/columns up to the border
    else:
        grid = (np.asarray(grid[0], np.int64), np.asarray(grid[1], np.int64))
        if grid[0].shape != uncertainty.shape[:1] or grid[1].shape != uncertainty.shape[1:]:
            raise ImageError(
                f"label_next: grid of {len(grid[0])} rows and {len(grid[1])} columns does not match "
                f"the uncertainty map {uncertainty.shape}"
            )
        height, width = shape if shape is not None else (int(grid[0][-1]) + 1, int(grid[1][-1]) + 1)
        ends = (int(grid[0][-1]) + 1, int(grid[1][-1]) + 1)
    rows = np.append(grid[0], ends[0])  # rows[i + 1]: the image row where map row i's pixels end
    cols = np.append(grid[1], ends[1])
    # Map pixels per image pixel, for the side of the uncertain windows in map pixels.
    density = min(len(grid[0]) / max(1, ends[0] - int(grid[0][0])), len(grid[1]) / max(1, ends[1] - int(grid[1][0])))
    side = max(16, min(height, width) // 8) if window is None else int(window)
    side = max(1, min(side, height, width))
    regions = _misclassified(report, frame, height, width)[:count]
    taken = [
        (
            int(np.searchsorted(rows, r.row0, "right")) - 1,
            int(np.searchsorted(cols, r.col0, "right")) - 1,
            int(np.searchsorted(grid[0], r.row1, "left")),
            int(np.searchsorted(grid[1], r.col1, "left")),
        )
        for r in regions
    ]
    coarse_side = max(1, min(int(side * density), *uncertainty.shape))
    for r in _uncertain_windows(uncertainty, coarse_side, count - len(regions), frame, taken):
        regions.append(
            Region(
                frame,
                int(rows[r.row0]),
                int(cols[r.col0]),
                min(height, int(rows[r.row1])),
                min(width, int(cols[r.col1])),
                r.reason,
                r.score,
            )
        )
    return regions


def _misclassified(report, frame: int, height: int, width: int) -> list[Region]:
    if report is None or report.accuracy is None:
        return []
    out = []
    for accuracy, box in zip(report.group_accuracy, report.group_boxes):
        if box[0] == frame and accuracy < MISCLASSIFIED_BELOW:
            r0, c0, r1, c1 = (int(v) for v in box[1:])
            pad = 8
            out.append(
                Region(
                    frame,
                    max(0, r0 - pad),
                    max(0, c0 - pad),
                    min(height, r1 + pad),
                    min(width, c1 + pad),
                    "misclassified stroke",
                    float(1.0 - accuracy),
                )
            )
    return sorted(out, key=lambda r: -r.score)


def _uncertain_windows(
    uncertainty: np.ndarray, side: int, count: int, frame: int, taken: list[tuple[int, int, int, int]]
) -> list[Region]:
    if count <= 0:
        return []
    height, width = uncertainty.shape
    # Mean uncertainty of the window whose top-left corner is each pixel (windows stay inside).
    mean = ndi.uniform_filter(
        uncertainty.astype(np.float32), size=side, mode="constant", origin=-(side // 2) if side > 1 else 0
    )
    mean = mean[: height - side + 1, : width - side + 1].copy()
    for r0, c0, r1, c1 in taken:
        _block(mean, r0, c0, r1, c1, side)
    out = []
    for _ in range(count):
        best = int(np.argmax(mean))
        score = float(mean.flat[best])
        if not np.isfinite(score) or score <= 0.0:
            break
        r0, c0 = divmod(best, mean.shape[1])
        out.append(Region(frame, r0, c0, r0 + side, c0 + side, "uncertain", min(score, 1.0)))
        _block(mean, r0, c0, r0 + side, c0 + side, side)
    return out


def _block(mean: np.ndarray, r0: int, c0: int, r1: int, c1: int, side: int) -> None:
    """Forbid every window corner whose window would overlap the box."""
    mean[max(0, r0 - side + 1) : max(0, r1), max(0, c0 - side + 1) : max(0, c1)] = -np.inf
