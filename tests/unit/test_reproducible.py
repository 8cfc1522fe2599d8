"""Property tests are reproducible: the Hypothesis profile of tests/conftest.py draws the same
examples on every run, so a failure seen in CI fails again on a developer's machine."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st


def _draws() -> list[tuple[int, str]]:
    seen: list[tuple[int, str]] = []

    @settings(max_examples=20, deadline=None)
    @given(st.integers(), st.text(max_size=5))
    def record(number, text):
        seen.append((number, text))

    record()
    return seen


def test_property_tests_draw_the_same_examples_on_every_run():
    assert settings.default.derandomize is True
    assert settings.default.database is None
    first, second = _draws(), _draws()
    assert len(first) >= 10
    assert first == second
