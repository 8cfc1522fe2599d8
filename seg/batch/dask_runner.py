"""Run a batch on a ``dask.distributed`` client.

The model bundle bytes are scattered to every worker once
(``client.scatter(..., broadcast=True)``); tasks receive that future and a digest, and each worker
process keeps the deserialised model in a small cache keyed by the digest. Workers read the input
files and write the outputs themselves, returning only a small summary, so the input and output
folders must be visible to the workers under the same paths (always true for a
``LocalCluster``; on a real cluster, a shared filesystem). Frames that need tiling are read by the
client, and their windows are sent to the workers; the client assembles the result and writes it.
Tasks are retried (``retries=2``) and a task on a worker that dies is rescheduled by Dask.

Workers import the task functions of this module by name, so they must stay module-level.
:class:`dask_client` gives a client for a batch (an existing scheduler or a local cluster).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seg.batch.apply import apply_file, one_line
from seg.batch.outcomes import ApplyOptions, BatchError, ImageOutcome
from seg.batch.reading import peek_shape
from seg.errors import SegError
from seg.files import display_name
from seg.tiling import TiledResult, Window, predict_window

if TYPE_CHECKING:
    from seg.model import Model

__all__ = ["TASK_RETRIES", "dask_client", "worker_model"]

TASK_RETRIES = 2

WORKER_MODELS: dict[str, Model] = {}
_WORKER_CACHE_SIZE = 4


def worker_model(digest: str, bundle: bytes) -> Model:
    """The model for ``digest``, deserialised once per worker process (the bundle is trusted
    here only as far as :func:`seg.persist.load_model` trusts any bundle)."""
    model = WORKER_MODELS.get(digest)
    if model is None:
        from seg.persist import load_model

        model = load_model(bundle, max_bytes=max(len(bundle) + 1, 200_000_000))
        if len(WORKER_MODELS) >= _WORKER_CACHE_SIZE:
            WORKER_MODELS.pop(next(iter(WORKER_MODELS)))
        WORKER_MODELS[digest] = model
    return model


def _file_task(digest: str, bundle: bytes, path: str, name: str, out_dir: str, options: ApplyOptions) -> ImageOutcome:
    return apply_file(worker_model(digest, bundle), path, name, out_dir, options)


def _window_task(
    digest: str,
    bundle: bytes,
    raw: np.ndarray,
    statistics: np.ndarray | None,
    inner: tuple[slice, slice],
    labels: bool,
    proba: bool,
):
    return predict_window(worker_model(digest, bundle), raw, statistics, inner, labels=labels, proba=proba)


class _DaskRunner:
    """Ships the model once and maps files / tile windows onto a ``distributed.Client``."""

    def __init__(self, client: Any, model: Model) -> None:
        from seg.persist import model_to_bytes

        self.client = client
        self.model = model
        bundle = model_to_bytes(model)
        self.digest = hashlib.sha256(bundle).hexdigest()
        [self.bundle] = client.scatter([bundle], broadcast=True, hash=False)
        workers = len(client.scheduler_info().get("workers", {})) or 1
        self.in_flight = 2 * workers

    def submit_file(self, path: Path, name: str, out: Path, options: ApplyOptions):
        return self.client.submit(
            _file_task,
            self.digest,
            self.bundle,
            str(path),
            name,
            str(out),
            options,
            pure=False,
            retries=TASK_RETRIES,
        )

    def mapper_factory(self, frame, statistics, labels: bool, proba: bool):
        """A window mapper for :func:`seg.tiling.apply_tiled` that predicts windows on workers."""

        def map_windows(windows: Sequence[Window]) -> Iterator[TiledResult]:
            from distributed import as_completed

            pending = iter(windows)
            finished = as_completed()
            window_of: dict[str, Window] = {}

            def submit_next() -> None:
                window = next(pending, None)
                if window is None:
                    return
                raw = np.ascontiguousarray(frame[window.read])
                [raw_future] = self.client.scatter([raw], hash=False)
                future = self.client.submit(
                    _window_task,
                    self.digest,
                    self.bundle,
                    raw_future,
                    statistics,
                    window.inner,
                    labels,
                    proba,
                    pure=False,
                    retries=TASK_RETRIES,
                )
                window_of[future.key] = window
                finished.add(future)

            # A bounded number of windows in flight: the client holds only a few at a time.
            for _ in range(self.in_flight):
                submit_next()
            for future in finished:
                out_labels, out_proba = future.result()
                window = window_of.pop(future.key)
                future.release()
                submit_next()
                yield TiledResult(window, out_labels, out_proba)

        return map_windows


def run_on_dask(client, model, paths, names, out, options, progress) -> list[ImageOutcome]:
    from distributed import as_completed

    runner = _DaskRunner(client, model)
    outcomes: list[ImageOutcome | None] = [None] * len(paths)
    futures = {}
    tiled_jobs = []
    n_features = model.feature_settings.n_features(model.n_channels)
    for index, (path, name) in enumerate(zip(paths, names)):
        shape = peek_shape(path)
        big = shape is not None and (
            options.tiling == "always"
            or (options.tiling == "auto" and shape[1] * shape[2] * n_features * 4 > options.tile_above_bytes)
        )
        if big:
            tiled_jobs.append(index)
        else:
            futures[runner.submit_file(path, name, out, options)] = index
    done = 0

    def record(index: int, outcome: ImageOutcome) -> None:
        nonlocal done
        outcomes[index] = outcome
        done += 1
        if progress is not None:
            progress(done, len(paths), outcome)

    # Frames that need tiling are split into windows here; the workers predict the windows
    # while they also work through the whole-image tasks submitted above.
    for index in tiled_jobs:
        record(index, apply_file(model, paths[index], names[index], out, options, mapper_factory=runner.mapper_factory))
    for future in as_completed(list(futures)):
        index = futures[future]
        try:
            outcome = future.result()
        except SegError as exc:
            outcome = ImageOutcome(names[index], display_name(paths[index]), one_line(exc))
        except Exception as exc:  # noqa: BLE001 - a worker died too often / lost; keep going
            outcome = ImageOutcome(
                names[index],
                display_name(paths[index]),
                f"failed on the cluster ({type(exc).__name__}: {one_line(exc)})",
            )
        record(index, outcome)
    return [o for o in outcomes if o is not None]


class dask_client:  # noqa: N801 - used like a function in a with-statement
    """Context manager giving a ``distributed.Client`` (or None) for a batch.

    ``dask_client(scheduler="tcp://host:8786")`` connects to an existing cluster;
    ``dask_client(workers=N)`` starts a local cluster of N worker processes (1 thread each) on
    the loopback interface; neither gives None (run in this process). Clusters started here are
    closed on exit.
    """

    def __init__(self, scheduler: str | None = None, workers: int | None = None) -> None:
        if scheduler and workers:
            raise BatchError("give either a scheduler address or a number of workers, not both")
        if workers is not None and workers < 1:
            raise BatchError(f"number of workers {workers} must be at least 1")
        self.scheduler = scheduler
        self.workers = workers
        self.client: Any = None
        self.cluster: Any = None

    def __enter__(self):
        if not self.scheduler and not self.workers:
            return None
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise BatchError("Dask is not installed: pip install 'dask[distributed]' to use workers") from None
        from seg.runtime import stop_hugepage_advice

        try:
            if self.scheduler:
                self.client = Client(self.scheduler, timeout="10s")
            else:
                with warnings.catch_warnings():
                    # the scheduler's HTTP endpoint moves to a free port when 8787 is taken
                    warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
                    self.cluster = LocalCluster(
                        n_workers=self.workers,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                    )
                self.client = Client(self.cluster)
                self.client.run(stop_hugepage_advice)  # our own workers: as in this process (seg.runtime)
        except (OSError, TimeoutError, ValueError) as exc:  # unreachable, timed out, bad address
            self.__exit__(None, None, None)
            where = self.scheduler or "a local cluster"
            raise BatchError(
                f"cannot connect to the Dask scheduler at {where}: {one_line(exc)}; "
                "check the address and that the scheduler is running"
            ) from None
        return self.client

    def __exit__(self, *exc_info) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
