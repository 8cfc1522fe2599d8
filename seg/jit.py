"""numba, set up once: imported first by every module that compiles kernels.

Three things every kernel module needs, in one place:

* **Cache directory.** Kernels are compiled with ``cache=True``. In an installed, read-only
  package numba cannot write its cache beside the source and warns on every import; the cache
  is an optimisation, so a private temporary directory is as good. ``NUMBA_CACHE_DIR`` set by the
  user wins.
* **Warnings.** numba's cache warnings (a read-only or unusable cache) cost time, not results;
  they are silenced. Other numba warnings are not.
* **Threading layer.** The forest's predictor is a ``parallel=True`` kernel and several Streamlit
  sessions (threads of one process) call it at once. numba runs parallel kernels on the first
  layer that loads, in the order TBB, OpenMP, workqueue. TBB and OpenMP accept calls from several
  threads at once; the workqueue layer, the fallback on a host with neither library, is not
  thread-safe and aborts the whole process ("Concurrent access has been detected"). So
  :func:`parallel_section` holds a lock around parallel kernel calls on that layer only. The lock
  serialises kernels that already use every core, so it costs little throughput (figures in
  bench/README.md, "Threading layers"). ``NUMBA_THREADING_LAYER`` set by the user wins, and the
  lock follows whatever layer numba actually loaded.

GNU OpenMP is not fork-safe: a process that forks after a parallel kernel ran must not run one
in the child. Nothing in seg forks (its pools are threads; Dask workers are spawned).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import warnings
from collections.abc import Iterator

__all__ = ["THREAD_SAFE_LAYERS", "cache_dir", "parallel_section", "threading_layer"]

THREAD_SAFE_LAYERS = frozenset({"tbb", "omp"})
"""numba threading layers that may run parallel kernels from several threads at once."""


def _choose_cache_dir() -> str | None:
    """The cache directory to use, or None to keep numba's default (beside the source)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    package = os.path.dirname(os.path.abspath(__file__))
    if os.access(package, os.W_OK):
        return None
    return os.path.join(tempfile.gettempdir(), "seg-numba-cache")


_CACHE_DIR = _choose_cache_dir()
if _CACHE_DIR is not None:
    # numba reads NUMBA_CACHE_DIR when it is imported; config.CACHE_DIR covers an earlier import.
    os.environ["NUMBA_CACHE_DIR"] = _CACHE_DIR

import numba  # noqa: E402  (after NUMBA_CACHE_DIR is chosen)

if _CACHE_DIR is not None:
    numba.config.CACHE_DIR = _CACHE_DIR
warnings.filterwarnings("ignore", category=numba.NumbaWarning, message=".*[Cc]ache.*")

_LAYER: str | None = None
_UNSAFE_LAYER_LOCK = threading.Lock()


def cache_dir() -> str | None:
    """Where numba caches compiled kernels: a directory, or None for beside each source file."""
    return _CACHE_DIR


def threading_layer() -> str:
    """The layer numba runs parallel kernels on: ``"tbb"``, ``"omp"`` or ``"workqueue"``.

    Loads the layer (starting numba's worker threads) on the first call, as the first parallel
    kernel call would.
    """
    global _LAYER
    if _LAYER is None:
        numba.get_num_threads()  # loads the threading layer if no parallel kernel has run yet
        _LAYER = str(numba.threading_layer())
    return _LAYER


@contextlib.contextmanager
def parallel_section() -> Iterator[None]:
    """Run a ``parallel=True`` kernel call safely while other threads may do the same.

    A no-op on a thread-safe layer (TBB, OpenMP); one call at a time on the workqueue layer.

    Examples
    --------
    >>> with parallel_section():               # doctest: +SKIP
    ...     _proba_kernel(x, ...)
    """
    if threading_layer() in THREAD_SAFE_LAYERS:
        yield
    else:
        with _UNSAFE_LAYER_LOCK:
            yield
