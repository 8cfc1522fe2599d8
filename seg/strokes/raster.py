"""Rasterisation: strokes of one frame -> an integer label image ``(H, W)``.

Exact, not antialiased: a pixel belongs to a stroke when its centre lies within
``max(width / 2, MIN_STROKE_RADIUS)`` of the stroke's polyline (round caps and joins; a single
click is a disc). The minimum radius makes every point of even a hair-thin stroke label the pixel it
falls in. Lines keep Fabric's default butt caps (flat ends). A rectangle labels its whole area,
interior plus border, up to the border's outer edge (square corners, as Fabric draws them),
whatever its fill colour: pixels whose centre lies inside that quadrilateral. Later
strokes overwrite earlier ones; eraser strokes (colour :data:`~seg.strokes.colors.ERASER_COLOR`)
write 0. Strokes reaching outside the image are clipped.

Work is budgeted in the units it costs, and checked before it is done: at most
``MAX_RASTER_WORK`` (segment, row) spans are computed and at most ``MAX_RASTER_PIXELS`` pixels
painted per :func:`rasterize` call (:meth:`Annotations.label_stack` shares one budget over all
frames). Pixels are counted per painted batch after overlapping spans are merged, so the same
full-frame rectangle drawn 12 500 times in alternating classes costs 12 500 frames of pixels,
and is refused after the first few. Beyond a budget: AnnotationError, never a long wait.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from seg.errors import AnnotationError
from seg.strokes.checks import check_integer, check_shape, describe_value
from seg.strokes.stroke import Stroke

# (segment, row) pairs one rasterize call may compute: ~0.4 us each on an idle core, ~1.3 us at
# load 12 on 2 cores (50 M took 37 s there); a long brush stroke across 4000 px has ~10 000.
MAX_RASTER_WORK = 2_000_000
MAX_RASTER_PIXELS = 200_000_000  # pixels one rasterize call may paint (~1 s), overlaps included
MIN_STROKE_RADIUS = 0.7072  # just above sqrt(0.5): every stroke point labels its own pixel
_CHUNK = 1 << 20  # spans / pixels handled per vectorised step (bounds memory)
_LONG_RUN = 256  # pixels from which a run is written as a slice, not by index


def rasterize(
    strokes: Sequence[Stroke],
    shape: tuple[int, int],
    *,
    frame: int = 0,
    dtype: Any = np.uint8,
    onto: np.ndarray | None = None,
    budget: RasterBudget | None = None,
    in_place: bool = False,
) -> np.ndarray:
    """Paint the strokes of one frame into a label image.

    Parameters
    ----------
    strokes : sequence of Stroke
        In painting order: later strokes overwrite earlier ones; label 0 (eraser) clears.
    shape : (H, W)
        Image height and width.
    frame : int
        Only strokes with this ``frame`` are painted.
    dtype : numpy integer dtype
        Output dtype; must hold every painted label.
    onto : (H, W) integer ndarray, optional
        Label image to paint over (a copy is painted; ``onto`` is not changed). Default: an
        unlabelled image.
    budget : RasterBudget, optional
        Spans and pixels this call may still spend, shared between calls (e.g. the frames of
        one annotation file). Default: a fresh ``RasterBudget()``.
    in_place : bool
        Paint ``onto`` itself (of ``dtype``) instead of a copy: no full-image copy per stroke on
        a large frame. On an error it may be partly painted; the caller discards it then.

    Returns
    -------
    (H, W) ndarray of ``dtype``
        0 = unlabelled, 1..K = class labels. Pixels whose centre lies within the stroke (see the
        module docstring) get the stroke's label; strokes are clipped to the image.

    Raises
    ------
    AnnotationError
        On an invalid shape, frame, dtype, a label that ``dtype`` cannot hold, or strokes too
        complex to rasterise (more than ``MAX_RASTER_WORK`` row spans or ``MAX_RASTER_PIXELS``
        painted pixels).
    """
    height, width = check_shape(shape)
    frame = check_integer(frame, "frame", high=2**31 - 1)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise AnnotationError(f"dtype must be a numpy integer dtype, got {describe_value(dtype)}") from None
    if dtype.kind not in "ui":
        raise AnnotationError(f"dtype must be an integer dtype, got {dtype}")
    top = np.iinfo(dtype).max
    selected = []
    for stroke in strokes:
        if not isinstance(stroke, Stroke):
            raise AnnotationError(f"rasterize needs Stroke objects, got {type(stroke).__name__}")
        if stroke.frame == frame:
            if stroke.label > top:
                raise AnnotationError(f"label {stroke.label} does not fit {dtype}; pass dtype=np.uint16")
            selected.append(stroke)
    if onto is None:
        out = np.zeros((height, width), dtype=dtype)
    else:
        if not isinstance(onto, np.ndarray) or onto.shape != (height, width):
            raise AnnotationError(f"onto must be an ({height}, {width}) label image, got {describe_value(onto)}")
        if in_place and onto.dtype != dtype:
            raise AnnotationError(f"painting in place needs a {dtype} label image, got {onto.dtype}")
        out = onto if in_place else onto.astype(dtype, copy=True)
    budget = RasterBudget() if budget is None else budget
    # Consecutive strokes of one label cannot overwrite each other: paint them as one batch.
    for label, group in itertools.groupby(selected, key=lambda stroke: stroke.label):
        for rows, first, last in _group_spans(list(group), height, width, budget):
            _paint(out, rows, first, last, label, budget)
    return out


class RasterBudget:
    """Work :func:`rasterize` may still do: row spans to compute and pixels to paint.

    Parameters
    ----------
    spans, pixels : int, optional
        Defaults: ``MAX_RASTER_WORK`` and ``MAX_RASTER_PIXELS`` as set when the budget is made.
    """

    __slots__ = ("spans", "pixels", "_limits")

    def __init__(self, spans: int | None = None, pixels: int | None = None) -> None:
        self.spans = MAX_RASTER_WORK if spans is None else spans
        self.pixels = MAX_RASTER_PIXELS if pixels is None else pixels
        self._limits = (self.spans, self.pixels)

    def spend_spans(self, amount: int) -> None:
        self.spans -= amount
        if self.spans < 0:
            raise AnnotationError(
                f"the strokes are too large or too many to rasterise (more than {self._limits[0]:,} "
                "row spans): use fewer, shorter or thinner strokes"
            )

    def spend_pixels(self, amount: int) -> None:
        self.pixels -= amount
        if self.pixels < 0:
            raise AnnotationError(
                f"the strokes paint more than {self._limits[1]:,} pixels (overlapping strokes of "
                "different classes count each time): use fewer or smaller strokes"
            )


def _group_spans(strokes: list[Stroke], height: int, width: int, budget: RasterBudget) -> Iterator[tuple]:
    """Row spans ``(rows, first_col, last_col)`` (inclusive) covering the strokes, in chunks."""
    starts, ends, radii, round_caps = [], [], [], []
    for stroke in strokes:
        xy = stroke.xy
        if stroke.kind == "rect":
            yield _polygon_spans(xy, height, width, budget)
            continue
        if stroke.kind == "path" and len(xy) > 1:
            starts.append(xy[:-1])
            ends.append(xy[1:])
        else:  # a dot (segment to itself) or a line (its two end points)
            starts.append(xy[:1])
            ends.append(xy[-1:])
        count = len(starts[-1])
        radii.append(np.full(count, max(stroke.width / 2, MIN_STROKE_RADIUS)))
        round_caps.append(np.full(count, stroke.kind == "path"))
    if starts:
        yield from _capsule_spans(
            np.concatenate(starts),
            np.concatenate(ends),
            np.concatenate(radii),
            np.concatenate(round_caps),
            height,
            width,
            budget,
        )


def _row_range(low: np.ndarray, high: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """First row and row count whose centres ``row + 0.5`` lie in ``[low, high]``."""
    first = np.ceil(np.clip(low, -1.0, height + 1.0) - 0.5)
    last = np.floor(np.clip(high, -2.0, height + 1.0) - 0.5)
    first = np.clip(first, 0, height).astype(np.int64)
    last = np.clip(last, -1, height - 1).astype(np.int64)
    return first, np.maximum(last - first + 1, 0)


def _capsule_spans(
    starts: np.ndarray,
    ends: np.ndarray,
    radius: np.ndarray,
    round_caps: np.ndarray,
    height: int,
    width: int,
    budget: RasterBudget,
) -> Iterator[tuple]:
    """Spans of the union of thick segments (per-segment radius; round or butt caps), chunked.

    For a row centre ``y`` the pixels of one thick segment form an interval in x: the union of
    the intervals of its two end discs (round caps) and of its rectangle, which for a convex
    capsule is the interval from the smallest start to the largest end.
    """
    ax, ay, bx, by = starts[:, 0], starts[:, 1], ends[:, 0], ends[:, 1]
    first, counts = _row_range(np.minimum(ay, by) - radius, np.maximum(ay, by) + radius, height)
    outside = (np.maximum(ax, bx) + radius < 0) | (np.minimum(ax, bx) - radius > width)
    counts[outside] = 0
    budget.spend_spans(int(counts.sum()))
    cumulative = np.cumsum(counts)
    begin = 0
    while begin < len(counts):
        done = cumulative[begin - 1] if begin else 0
        end = max(int(np.searchsorted(cumulative, done + _CHUNK, side="right")), begin + 1)
        chunk = slice(begin, end)
        begin = end
        n = counts[chunk]
        if n.sum() == 0:
            continue
        seg = np.repeat(np.arange(len(n)), n)
        rows = first[chunk][seg] + np.arange(len(seg)) - (np.cumsum(n) - n)[seg]
        low, high = _capsule_row_intervals(
            rows + 0.5,
            ax[chunk][seg],
            ay[chunk][seg],
            bx[chunk][seg],
            by[chunk][seg],
            radius[chunk][seg],
            round_caps[chunk][seg],
        )
        yield _columns(rows, low, high, width)


def _capsule_row_intervals(y, ax, ay, bx, by, radius, round_caps):
    """x-interval ``[low, high]`` of points at height y within ``radius`` of segment a-b."""
    low = np.full(y.shape, np.inf)
    high = np.full(y.shape, -np.inf)
    r2 = radius * radius
    if round_caps.any():
        for cx, cy in ((ax, ay), (bx, by)):
            q = r2 - (y - cy) ** 2
            half = np.sqrt(np.maximum(q, 0.0))
            inside = round_caps & (q >= 0)
            low = np.where(inside, np.minimum(low, cx - half), low)
            high = np.where(inside, np.maximum(high, cx + half), high)
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    length = np.sqrt(length2)
    e = y - ay
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # along the segment: 0 <= u*dx + e*dy <= length^2, with u = x - ax
        u1 = -e * dy / dx
        u2 = (length2 - e * dy) / dx
        along_ok = (e * dy >= 0) & (e * dy <= length2)
        lo1 = np.where(dx != 0, np.minimum(u1, u2), np.where(along_ok, -np.inf, np.inf))
        hi1 = np.where(dx != 0, np.maximum(u1, u2), np.where(along_ok, np.inf, -np.inf))
        # across the segment: |u*dy - e*dx| <= radius * length
        v1 = (e * dx - radius * length) / dy
        v2 = (e * dx + radius * length) / dy
        across_ok = np.abs(e * dx) <= radius * length
        lo2 = np.where(dy != 0, np.minimum(v1, v2), np.where(across_ok, -np.inf, np.inf))
        hi2 = np.where(dy != 0, np.maximum(v1, v2), np.where(across_ok, np.inf, -np.inf))
    lo, hi = np.maximum(lo1, lo2), np.minimum(hi1, hi2)
    body = (length2 > 0) & (lo <= hi)
    low = np.where(body, np.minimum(low, ax + lo), low)
    high = np.where(body, np.maximum(high, ax + hi), high)
    return low, high


def _columns(rows, low, high, width):
    """Pixel columns whose centres ``col + 0.5`` lie in ``[low, high]``, clipped to the image."""
    first = np.ceil(np.clip(low, -2.0, width + 1.0) - 0.5)
    last = np.floor(np.clip(high, -2.0, width + 1.0) - 0.5)
    keep = (first <= last) & (last >= 0) & (first <= width - 1)
    first = np.clip(first[keep], 0, width - 1).astype(np.int64)
    last = np.clip(last[keep], 0, width - 1).astype(np.int64)
    return rows[keep], first, last


def _polygon_spans(polygon: np.ndarray, height: int, width: int, budget: RasterBudget) -> tuple:
    """Spans of pixel centres inside a polygon (even-odd rule, half-open in y)."""
    ys = polygon[:, 1]
    first, count = _row_range(np.array([ys.min()]), np.array([ys.max()]), height)
    if polygon[:, 0].max() < 0 or polygon[:, 0].min() > width:
        count[:] = 0
    budget.spend_spans(int(count[0]))
    rows = first[0] + np.arange(count[0])
    y = (rows + 0.5)[:, None]
    a, b = polygon, np.roll(polygon, -1, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        crosses = ((a[:, 1] <= y) & (y < b[:, 1])) | ((b[:, 1] <= y) & (y < a[:, 1]))
        x = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
    x = np.sort(np.where(crosses, x, np.inf), axis=1)
    pieces = [_columns(rows, x[:, k], x[:, k + 1], width) for k in range(0, x.shape[1] - 1, 2)]
    return tuple(np.concatenate(parts) for parts in zip(*pieces))


def _paint(out: np.ndarray, rows, first, last, value: int, budget: RasterBudget) -> None:
    """Set ``out[rows, first:last+1] = value`` for every span; overlapping spans merged first,
    then the pixels to paint are spent from ``budget`` before any is written."""
    if len(rows) == 0:
        return
    width = out.shape[1]
    order = np.argsort(rows * (width + 1) + first, kind="stable")
    rows, first, last = rows[order], first[order], last[order]
    # running end of the spans so far, made comparable across rows by a row offset
    reach = np.maximum.accumulate(rows * (width + 2) + last)
    new = np.ones(len(rows), dtype=bool)
    new[1:] = (rows[1:] != rows[:-1]) | (first[1:] > reach[:-1] - rows[1:] * (width + 2) + 1)
    starts = np.flatnonzero(new)
    stops = np.append(starts[1:], len(rows)) - 1
    lengths = reach[stops] - rows[starts] * (width + 2) - first[starts] + 1
    offsets = rows[starts] * width + first[starts]
    budget.spend_pixels(int(lengths.sum()))
    flat = out.reshape(-1)
    # Spans that continue each other in memory (whole rows of a rectangle) become one run; long
    # runs are written as slices (a memset), short ones through one index array per chunk.
    follows = np.ones(len(offsets), dtype=bool)
    follows[1:] = offsets[1:] != offsets[:-1] + lengths[:-1]
    run_starts = np.flatnonzero(follows)
    offsets, lengths = offsets[run_starts], np.add.reduceat(lengths, run_starts)
    long = lengths >= _LONG_RUN
    for offset, length in zip(offsets[long].tolist(), lengths[long].tolist()):
        flat[offset : offset + length] = value
    offsets, lengths = offsets[~long], lengths[~long]
    cumulative = np.cumsum(lengths)
    begin = 0
    while begin < len(lengths):
        done = cumulative[begin - 1] if begin else 0
        end = max(int(np.searchsorted(cumulative, done + _CHUNK, side="right")), begin + 1)
        n = lengths[begin:end]
        index = np.repeat(offsets[begin:end] - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        flat[index] = value
        begin = end


def repaint(
    labels: np.ndarray,
    painted: Sequence[Stroke],
    strokes: Sequence[Stroke],
    *,
    frame: int = 0,
    in_place: bool = False,
) -> np.ndarray:
    """``rasterize(strokes, labels.shape, frame=frame, dtype=labels.dtype)``, reusing ``labels``.

    ``labels`` must be that rasterisation of ``painted``. When ``strokes`` is ``painted`` with
    more strokes after it (the usual case: one new stroke), only the new strokes are painted,
    over a copy of ``labels`` (over ``labels`` itself with ``in_place``): strokes paint in order,
    so the result is the same. Otherwise (undo, an erased or changed stroke) everything is
    painted again, into a new image.

    Returns
    -------
    (H, W) ndarray of ``labels.dtype``
        ``labels`` itself when ``strokes`` equals ``painted``.
    """
    strokes, painted = tuple(strokes), tuple(painted)
    if strokes[: len(painted)] == painted:  # identity first: unchanged strokes compare in O(1)
        if len(strokes) == len(painted):
            return labels
        return rasterize(
            strokes[len(painted) :], labels.shape, frame=frame, dtype=labels.dtype, onto=labels, in_place=in_place
        )
    return rasterize(strokes, labels.shape, frame=frame, dtype=labels.dtype)
