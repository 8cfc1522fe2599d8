"""Give a closed tab's memory back without a garbage collection after every rerun.

By default Streamlit runs a full garbage collection after every script run
(``runner.postScriptGC``). In this app's server a full collection walks about 250 000 objects
(Streamlit, scikit-learn, numba, ...) and takes ~120 ms on one core while holding the GIL, so
every stroke of every user stopped all other users for that long: with 8 users at once it was
the largest part of the server's time per stroke (``bench/load.py``; see
``bench/README.md``). ``.streamlit/config.toml`` turns it off.

What a closed tab held is given back in two steps:

1. **At once, when the tab disconnects**, the recomputable bulk of the session (feature stacks,
   the prediction, cached pictures) is emptied. Streamlit keeps a disconnected session's
   ``st.session_state`` for ``server.disconnectedSessionTTL`` (120 s) so that a reconnecting
   tab resumes, and drops it only at the next disconnect of any session after that; without this
   step a closed 4-megapixel session would hold ~1 GB for that long. Pages register that data
   with :func:`release_on_disconnect` at the end of every run (a session-scoped resource, which
   Streamlit releases on disconnect); a tab that reconnects finds it emptied and the page
   recomputes it (:func:`seg.ui.state.forget_released`).
2. **When the session is dropped**, the rest (image, strokes, model) is freed by one full
   collection: Streamlit's objects of a session refer to each other in cycles. The release in
   step 1 schedules it a moment later (after the server has dropped the sessions whose reconnect
   time ran out while handling this disconnect). Disconnects in quick succession share one
   collection.

Freed memory must also leave the process. glibc's malloc by default raises its mmap threshold
after the first large free, so later arrays (feature stacks, predictions) land in heaps it keeps,
and it makes one arena per thread (Streamlit runs each session in its own thread):
:func:`tune_allocator` fixes the threshold at 128 KiB (large arrays are always mapped, so freeing
them unmaps them) and allows 2 arenas, as ``MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2``
in the environment would, but without asking every host to set them.

It also stops NumPy from asking for transparent huge pages (:mod:`seg.runtime`): in a
long-running server the first write to a fresh large array stalled in memory compaction, and a
pan on an 8192² image took 2.1 s to its overlay instead of 0.36 s (``bench/viewport.py``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import threading

import streamlit as st

from seg.runtime import stop_hugepage_advice

#: Seconds from a session's disconnect to the collection. Streamlit drops expired sessions
#: while it handles that disconnect; the delay lets it finish first.
COLLECT_DELAY_S: float = 1.0

#: glibc mallopt() parameters and the values :func:`tune_allocator` sets.
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
MMAP_THRESHOLD_BYTES: int = 128 * 1024
ARENA_MAX: int = 2

_lock = threading.Lock()
_pending: threading.Timer | None = None
_tuned: bool | None = None


def tune_allocator() -> bool:
    """Make glibc return freed large blocks to the OS and NumPy stop advising huge pages (once
    per process); False if either could not be done (not glibc).

    Environment settings of the host win: a variable ``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_ARENA_MAX`` or ``NUMPY_MADVISE_HUGEPAGE`` that is already set is left alone.
    """
    global _tuned
    with _lock:
        if _tuned is None:
            _tuned = stop_hugepage_advice() & _mallopt()
        return _tuned


def _mallopt() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = True
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        done &= mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    if "MALLOC_ARENA_MAX" not in os.environ:
        done &= mallopt(_M_ARENA_MAX, ARENA_MAX) == 1
    return bool(done)


def collect_soon(delay_s: float = COLLECT_DELAY_S) -> None:
    """Run one full garbage collection ``delay_s`` from now, unless one is already waiting."""
    global _pending
    with _lock:
        if _pending is not None:
            return
        _pending = threading.Timer(delay_s, _collect)
        _pending.daemon = True
        _pending.name = "seg-collect-closed-sessions"
        _pending.start()


def _collect() -> None:
    global _pending
    with _lock:
        _pending = None  # a disconnect from now on needs (and schedules) a later collection
    gc.collect()


class SessionItems:
    """What a session registered for release, and whether one of its runs is in progress."""

    def __init__(self) -> None:
        self.items: list = []
        self.running = False


def release(session: SessionItems) -> None:
    """Empty every dict registered by ``session`` and call ``release()`` on every other item;
    then schedule a collection. What Streamlit calls when the session disconnects.

    Skipped while a run of the session is in progress (its script still uses the data; Streamlit
    is stopping it): that session's data then waits for the collection after its expiry.
    """
    if not session.running:
        for item in session.items:
            if isinstance(item, dict):
                item.clear()
            elif item is not None:
                item.release()
        session.items = []
    collect_soon()


@st.cache_resource(scope="session", on_release=release, show_spinner=False)
def _session_items() -> SessionItems:
    return SessionItems()


def watch_session() -> None:
    """Call at the start of every run of every page: arranges the release and collection when
    this session disconnects; tunes the allocator on the first call in the process."""
    tune_allocator()
    _session_items().running = True


def release_on_disconnect(*items) -> None:
    """Empty these dicts / ``release()`` these objects when this session's tab disconnects.

    Call it as the last thing of every run, with everything recomputable the session holds
    now: it replaces what the previous run registered and marks the run finished.
    """
    session = _session_items()
    session.items = list(items)
    session.running = False


def run_finished() -> None:
    """Mark this run finished without changing what is registered (pages that hold nothing
    recomputable call it last; the main page's data stays registered)."""
    _session_items().running = False
