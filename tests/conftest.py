"""Shared test configuration: markers and paths to the real data beside the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ISBI = REPO.parent / "shared" / "data" / "isbi2012"


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
