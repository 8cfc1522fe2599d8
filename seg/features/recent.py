"""The feature stacks of the images last trained on, so that predicting on them reuses the work.

``model = seg.train(image, labels)`` then ``model.predict(image)`` would compute the same features
twice, and features are most of a cold start. :func:`seg.train` remembers the stacks it computed
here; :meth:`seg.Model.predict` and :meth:`seg.Model.predict_proba` look a frame up before
computing anything.

Keyed by the frame's content digest (values, shape, dtype), the feature settings and the
normalisation, so an array changed in place after training is a different key and never gets
stale features. Bounded: at most :attr:`RecentFeatures.max_entries` stacks and
:attr:`RecentFeatures.max_bytes` bytes (a stack larger than that is not kept); the least recently
used goes first. The stacks are read-only and shared; every method is thread-safe. The app keeps
its own per-session feature cache and passes features to ``train``, so it does not fill this one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from seg.features.settings import FeatureSettings
from seg.images import Normalization
from seg.images.frames import image_digest

__all__ = ["RecentFeatures", "RECENT_FEATURES"]


class _Key(NamedTuple):
    shape: tuple[int, ...]
    dtype: str
    settings: FeatureSettings
    normalization: Normalization
    digest: str


class RecentFeatures:
    """A small LRU of ``(frame content, settings, normalisation) -> (H, W, F) float32`` stacks.

    Parameters
    ----------
    max_entries : int
        Most stacks kept.
    max_bytes : int
        Most bytes kept over all stacks; a stack above it is not kept at all.
    """

    def __init__(self, max_entries: int = 2, max_bytes: int = 256 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._stacks: OrderedDict[_Key, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def remember(
        self, frame: np.ndarray, settings: FeatureSettings, normalization: Normalization, features: np.ndarray
    ) -> None:
        """Keep ``features`` (computed from ``frame``) if they fit; they become read-only."""
        if features.nbytes > self.max_bytes or self.max_entries < 1:
            return
        key = _Key(frame.shape, frame.dtype.str, settings, normalization, image_digest(frame))
        features.setflags(write=False)
        with self._lock:
            self._stacks[key] = features
            self._stacks.move_to_end(key)
            while len(self._stacks) > self.max_entries or self.nbytes > self.max_bytes:
                self._stacks.popitem(last=False)

    def find(self, frame: np.ndarray, settings: FeatureSettings, normalization: Normalization) -> np.ndarray | None:
        """The read-only stack of a frame with exactly these values, or None.

        The frame is digested only when a kept stack has its shape, dtype and settings.
        """
        with self._lock:
            candidates = [
                key for key in self._stacks if key[:4] == (frame.shape, frame.dtype.str, settings, normalization)
            ]
        if not candidates:
            return None
        digest = image_digest(frame)
        with self._lock:
            for key in candidates:
                if key.digest == digest and key in self._stacks:
                    self._stacks.move_to_end(key)
                    return self._stacks[key]
        return None

    def clear(self) -> None:
        """Forget every stack (frees their memory once no caller holds them)."""
        with self._lock:
            self._stacks.clear()

    @property
    def nbytes(self) -> int:
        """Bytes of the stacks kept."""
        return sum(stack.nbytes for stack in self._stacks.values())

    def __len__(self) -> int:
        return len(self._stacks)


RECENT_FEATURES = RecentFeatures()
"""The process-wide instance :func:`seg.train` and :class:`seg.Model` use."""
