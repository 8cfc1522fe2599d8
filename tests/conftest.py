"""Shared test configuration: markers, Hypothesis profiles and paths to the real data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]
ISBI = REPO.parent / "shared" / "data" / "isbi2012"

# Property tests draw the same examples on every run and every machine (derandomize: the seed
# comes from the test itself), so a failure in CI fails again locally; no example database, so a
# run never depends on what an earlier run found. A test's own @settings override the rest only.
# SEG_HYPOTHESIS=explore draws fresh random examples, to hunt for new failures by hand.
settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("SEG_HYPOTHESIS", "deterministic"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds (still runs in CI)")
    config.addinivalue_line("markers", "e2e: drives the real server in headless Chromium")


@pytest.fixture(scope="session")
def isbi_dir() -> Path:
    if not ISBI.is_dir():  # pragma: no cover - CI always has ../shared beside the clone
        pytest.fail(f"ISBI data not found at {ISBI}: the repo must be checked out beside ../shared")
    return ISBI


@pytest.fixture(autouse=True)
def _restore_main_module():
    """Put ``sys.modules["__main__"]`` back after each test.

    AppTest runs a page as ``__main__`` and leaves it installed; Dask's LocalCluster then starts
    its worker processes with multiprocessing's spawn method, which re-runs ``__main__``'s file
    in every worker, i.e. the Streamlit page, and the workers fail to start.
    """
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main
