"""Features of a large frame computed tile by tile, when first looked at, under a byte budget.

The app never computes the ``(H, W, F)`` feature stack of a large frame (64 megapixels x 40
features would be 10 GB). :class:`TileFeatures` cuts the frame into ``tile x tile`` tiles (the
windows of :func:`seg.tiling.tile_windows`, with the same context margin as the tiled apply path)
and computes a tile's features only when a viewport or a stroke needs them. Each tile is computed
on its context window with the *frame's* normalisation statistics, so its features equal the
whole-frame features exactly (see :mod:`seg.tiling`). Computed tiles are kept, least recently used
dropped first, while their bytes stay under ``budget``.

A view just panned to is the exception: its 4-9 tiles' context windows hold 2-5 times the pixels
of a 760-pixel view at 1:1, so :meth:`TileFeatures.gather` computes the view's own window (same
margin, same statistics, so the same numbers) when that costs less than the missing tiles, and
the app computes the tiles afterwards, for the strokes drawn there.

Training needs only the labelled pixels: :meth:`TileFeatures.labelled_samples` keeps, per
annotated tile, the feature rows of its labelled pixels (re-gathered only when that tile's labels
change), so training memory grows with what was annotated, not with the image.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from seg.errors import SettingsError

if TYPE_CHECKING:
    from seg.features.settings import FeatureSettings
    from seg.images import Normalization

__all__ = ["TileFeatures", "VIEW_TILE", "DIRECT_BAND_BYTES"]

#: Features computed at once when :meth:`TileFeatures.gather` reads a view's own window (bytes):
#: a 760-pixel view at 1:1 with its context margin is 130 MB with 40 features, so two bands.
DIRECT_BAND_BYTES: int = 96_000_000

#: Tile side for interactive work: a 760-pixel viewport at 1:1 touches 4-9 tiles; the context
#: margin (~70 px for the presets) adds 30-65 % to a tile's work (less than with smaller tiles).
VIEW_TILE: int = 512


class TileFeatures:
    """Lazily computed, LRU-cached feature tiles of one frame.

    Parameters
    ----------
    frame : (H, W) or (H, W, C) array
        One frame, not normalised (uint8, uint16 or float32; may be a memmap).
    settings : FeatureSettings
    normalization : Normalization
        Applied with the whole frame's statistics (computed once here).
    tile : int
        Tile side in pixels.
    budget : int
        Bytes of feature tiles kept; the least recently used tiles are dropped beyond it (the
        tile just computed is always kept).
    band_bytes : int
        Most bytes of features :meth:`gather` computes at once when it reads pixels' own window.
    """

    def __init__(
        self,
        frame: np.ndarray,
        settings: FeatureSettings,
        normalization: Normalization,
        *,
        tile: int = VIEW_TILE,
        budget: int = 800_000_000,
        band_bytes: int = DIRECT_BAND_BYTES,
    ) -> None:
        from seg.tiling import frame_statistics, tile_windows

        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
            raise SettingsError(f"feature tile budget must be a number of bytes >= 0, got {budget!r}")
        self.frame = frame
        self.settings = settings
        self.normalization = normalization
        self.tile = int(tile)
        self.budget = int(budget)
        self.band_bytes = max(1, int(band_bytes))
        height, width = frame.shape[:2]
        self.shape = (int(height), int(width))
        channels = 1 if frame.ndim == 2 else int(frame.shape[2])
        self.n_features = settings.n_features(channels)
        self.statistics = frame_statistics(frame, normalization)
        windows = tile_windows(self.shape, self.tile, settings.margin())
        self.grid = (-(-self.shape[0] // self.tile), -(-self.shape[1] // self.tile))
        self._windows = {(w.write[0].start // self.tile, w.write[1].start // self.tile): w for w in windows}
        self._tiles: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._samples: dict[tuple[int, int], tuple[bytes, np.ndarray, np.ndarray]] = {}
        #: Tiles computed so far (a tile dropped and needed again counts twice).
        self.computed = 0

    # ------------------------------------------------------------------ tiles

    @property
    def tile_bytes(self) -> int:
        """Bytes of one full tile's features."""
        return self.tile * self.tile * self.n_features * 4

    @property
    def nbytes(self) -> int:
        """Bytes held: cached tiles plus the labelled pixels' feature rows."""
        tiles = sum(a.nbytes for a in self._tiles.values())
        return tiles + sum(x.nbytes + y.nbytes for _, x, y in self._samples.values())

    def cached(self) -> list[tuple[int, int]]:
        """(tile row, tile column) of the tiles held, least recently used first."""
        return list(self._tiles)

    def tile_features(self, row: int, col: int) -> np.ndarray:
        """(h, w, F) float32 features of tile (row, col): ``features[row*tile:, col*tile:]``'s tile."""
        key = (int(row), int(col))
        if key in self._tiles:
            self._tiles.move_to_end(key)
            return self._tiles[key]
        from seg.tiling import window_features

        window = self._windows[key]
        features = window_features(
            np.asarray(self.frame[window.read]), self.settings, self.normalization, self.statistics
        )
        block = np.ascontiguousarray(features[window.inner])
        del features
        self.computed += 1
        self._tiles[key] = block
        total = sum(a.nbytes for a in self._tiles.values())
        while total > self.budget and len(self._tiles) > 1:
            _, dropped = self._tiles.popitem(last=False)
            total -= dropped.nbytes
        return block

    def tiles_under(self, rows: np.ndarray, cols: np.ndarray) -> list[tuple[int, int]]:
        """Tiles holding any of the pixels ``rows x cols`` (1-D index arrays)."""
        tile_rows = np.unique(np.asarray(rows) // self.tile)
        tile_cols = np.unique(np.asarray(cols) // self.tile)
        return [(int(r), int(c)) for r in tile_rows for c in tile_cols]

    def fits(self, rows: np.ndarray, cols: np.ndarray) -> bool:
        """Whether the tiles under ``rows x cols`` fit in the budget together."""
        return len(self.tiles_under(rows, cols)) * self.tile_bytes <= self.budget

    def ready(self, rows: np.ndarray, cols: np.ndarray) -> bool:
        """Whether every tile under ``rows x cols`` is already computed."""
        return all(key in self._tiles for key in self.tiles_under(rows, cols))

    def gather(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Features of the pixels ``rows x cols``: ``(len(rows), len(cols), F)`` float32.

        Equal to ``compute_features(normalize(frame))[np.ix_(rows, cols)]``. ``rows`` and
        ``cols`` must be sorted (display samples are). From the cached tiles when they are all
        computed; otherwise whichever costs less: computing the missing tiles (kept for the
        next stroke), or computing the features of the pixels' own window directly, in bands
        of at most :data:`DIRECT_BAND_BYTES` (a view just panned to: a 760-pixel view at 1:1
        touches 4-9 tiles whose context windows hold 2-5 times its pixels).
        """
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        if len(rows) and len(cols) and self.direct_cost(rows, cols) < self.tiles_cost(rows, cols):
            return self._gather_direct(rows, cols)
        out = np.empty((len(rows), len(cols), self.n_features), np.float32)
        row_tiles, col_tiles = rows // self.tile, cols // self.tile
        row_groups = _runs(row_tiles)
        col_groups = _runs(col_tiles)
        for tile_row, row_part in row_groups:
            for tile_col, col_part in col_groups:
                block = self.tile_features(tile_row, tile_col)
                local_rows = _as_slice(rows[row_part] - tile_row * self.tile)
                local_cols = _as_slice(cols[col_part] - tile_col * self.tile)
                if isinstance(local_rows, slice) and isinstance(local_cols, slice):
                    out[row_part, col_part] = block[local_rows, local_cols]
                else:
                    out[row_part, col_part] = block[np.ix_(np.r_[local_rows], np.r_[local_cols])]
        return out

    def tiles_cost(self, rows: np.ndarray, cols: np.ndarray) -> int:
        """Pixels of context windows to compute for the tiles under ``rows x cols`` not cached."""
        cost = 0
        for key in self.tiles_under(rows, cols):
            if key not in self._tiles:
                read_rows, read_cols = self._windows[key].read
                cost += (read_rows.stop - read_rows.start) * (read_cols.stop - read_cols.start)
        return cost

    def direct_cost(self, rows: np.ndarray, cols: np.ndarray) -> int:
        """Pixels of windows :meth:`gather` computes for ``rows x cols`` without tiles."""
        columns = self._read_range(int(cols[0]), int(cols[-1]) + 1, self.shape[1])
        width = columns.stop - columns.start
        return sum((band.stop - band.start) * width for _, band in self._bands(rows, width))

    def _read_range(self, start: int, stop: int, length: int) -> slice:
        margin = self.settings.margin()
        return slice(max(0, start - margin), min(length, stop + margin))

    def _bands(self, rows: np.ndarray, width: int) -> list[tuple[slice, slice]]:
        """(part of ``rows``, image rows read) per band, each band's features under the limit."""
        row_bytes = width * self.n_features * 4
        margin = self.settings.margin()
        span = int(rows[-1]) + 1 - int(rows[0])
        total = (span + 2 * margin) * row_bytes
        count = max(1, min(len(rows), -(-total // self.band_bytes)))
        bounds = np.linspace(0, len(rows), count + 1).round().astype(int)
        bands = []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            if stop > start:
                read = self._read_range(int(rows[start]), int(rows[stop - 1]) + 1, self.shape[0])
                bands.append((slice(int(start), int(stop)), read))
        return bands

    def _gather_direct(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        from seg.tiling import window_features

        out = np.empty((len(rows), len(cols), self.n_features), np.float32)
        columns = self._read_range(int(cols[0]), int(cols[-1]) + 1, self.shape[1])
        local_cols = _as_slice(cols - columns.start)
        for part, read in self._bands(rows, columns.stop - columns.start):
            features = window_features(
                np.asarray(self.frame[read, columns]), self.settings, self.normalization, self.statistics
            )
            local_rows = _as_slice(rows[part] - read.start)
            if isinstance(local_rows, slice) and isinstance(local_cols, slice):
                out[part] = features[local_rows, local_cols]
            else:
                out[part] = features[np.ix_(np.r_[local_rows], np.r_[local_cols])]
            del features
        return out

    # ------------------------------------------------------------------ training samples

    def labelled_samples(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature rows and labels of every labelled pixel of ``labels`` (H, W), tile by tile.

        Returns
        -------
        x : (N, F) float32
        y : (N,) int64, values > 0
            Pixels in tile order (row-major over tiles, row-major inside a tile).
        """
        if labels.shape != self.shape:
            raise SettingsError(f"labels of shape {labels.shape} do not match the frame {self.shape}")
        kept: dict[tuple[int, int], tuple[bytes, np.ndarray, np.ndarray]] = {}
        for key in self._labelled_tiles(labels):
            block = np.ascontiguousarray(labels[self._windows[key].write])
            digest = hashlib.blake2b(block.tobytes(), digest_size=16).digest()
            previous = self._samples.get(key)
            if previous is not None and previous[0] == digest:
                kept[key] = previous
                continue
            index = np.flatnonzero(block)
            features = self.tile_features(*key).reshape(-1, self.n_features)
            kept[key] = (digest, features[index], block.reshape(-1)[index].astype(np.int64))
        self._samples = kept
        if not kept:
            return np.empty((0, self.n_features), np.float32), np.empty(0, np.int64)
        ordered = [kept[key] for key in sorted(kept)]
        return np.concatenate([x for _, x, _ in ordered]), np.concatenate([y for _, _, y in ordered])

    def _labelled_tiles(self, labels: np.ndarray) -> list[tuple[int, int]]:
        """Tiles with any labelled pixel, row-major (looks only at the bands of rows with labels)."""
        rows_labelled = np.asarray(labels.any(axis=1))
        found = []
        for row in range(self.grid[0]):
            band = slice(row * self.tile, min((row + 1) * self.tile, self.shape[0]))
            if rows_labelled[band].any():
                columns = np.flatnonzero(labels[band].any(axis=0))
                found += [(row, int(col)) for col in np.unique(columns // self.tile)]
        return found

    def drop_tiles(self) -> None:
        """Drop the cached tiles, keep the labelled pixels' rows (a frame no longer looked at)."""
        self._tiles.clear()

    def release(self) -> None:
        """Drop every cached tile and sample (they are computed again when needed)."""
        self._tiles.clear()
        self._samples.clear()


def _as_slice(index: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive indices as a slice (a view, not a gather); other indices as they are."""
    if len(index) and int(index[-1]) - int(index[0]) == len(index) - 1 and (np.diff(index) == 1).all():
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _runs(values: np.ndarray) -> list[tuple[int, slice]]:
    """(value, slice) for each run of equal consecutive values of a sorted 1-D array."""
    if len(values) == 0:
        return []
    starts = np.flatnonzero(np.diff(values)) + 1
    bounds = [0, *starts.tolist(), len(values)]
    return [(int(values[a]), slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
