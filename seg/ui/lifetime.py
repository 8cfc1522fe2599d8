"""Give a closed tab's memory back without a garbage collection after every rerun.

By default Streamlit runs a full garbage collection after every script run
(``runner.postScriptGC``). In this app's server a full collection walks about 250 000 objects
(Streamlit, scikit-learn, numba, ...) and takes ~120 ms on one core while holding the GIL, so
every stroke of every user stopped all other users for that long: with 8 users at once it was
the largest part of the server's time per stroke (``bench/load.py``; see
``bench/README.md``). ``.streamlit/config.toml`` turns it off.

A collection is still needed once per *session*: Streamlit's objects of a session refer to
each other in cycles, so when a closed session is dropped (``server.disconnectedSessionTTL``
after its tab closed, at the next disconnect of any session) its ``st.session_state`` (image,
feature stacks, prediction) is freed only by the cycle collector. Every page calls
:func:`watch_session` once per run; when the session disconnects, Streamlit releases its
session-scoped resource, and that schedules one full collection a moment later (after the
server has dropped the sessions whose reconnect time ran out). Disconnects in quick succession
share one collection.
"""

from __future__ import annotations

import gc
import threading

import streamlit as st

#: Seconds from a session's disconnect to the collection. Streamlit drops expired sessions
#: while it handles that disconnect; the delay lets it finish first.
COLLECT_DELAY_S: float = 1.0

_lock = threading.Lock()
_pending: threading.Timer | None = None


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


def _released(_token: object) -> None:
    collect_soon()


@st.cache_resource(scope="session", on_release=_released, show_spinner=False)
def _session_token() -> object:
    return object()


def watch_session() -> None:
    """Arrange a collection after this session disconnects (call once per run of every page)."""
    _session_token()
