"""What a disconnecting tab gives back (seg/ui/lifetime.py), without a server.

The real-server checks are in tests/load/test_long_sessions.py; these pin the rules that keep
a disconnect from pulling data out from under a script that is still running.
"""

from __future__ import annotations

import numpy as np

from seg.ui.lifetime import SessionItems, release


class _Held:
    def __init__(self) -> None:
        self.released = False

    def release(self) -> None:
        self.released = True


def test_a_disconnect_empties_what_the_last_finished_run_registered():
    features, pictures, prediction = {"key": np.zeros((4, 4, 2))}, {"bg": b"png"}, _Held()
    session = SessionItems()
    session.items = [features, pictures, prediction, None]
    release(session)
    assert features == {} and pictures == {} and prediction.released and session.items == []


def test_a_disconnect_during_a_run_leaves_the_running_script_its_data():
    features, prediction = {"key": np.zeros((4, 4, 2))}, _Held()
    session = SessionItems()
    session.items, session.running = [features, prediction], True
    release(session)
    assert "key" in features and not prediction.released
