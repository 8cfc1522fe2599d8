"""Building blocks of the benchmark: timing, memory, machine description, tables and JSON.

Nothing here knows about segmentation; :mod:`bench.run` composes these helpers into rows.
Timings are wall-clock seconds (what a user waits for) with the process CPU time alongside
(summed over threads), which is less disturbed when other programs share the cores.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Timing",
    "measure",
    "measure_pair",
    "Stopwatch",
    "rss_mb",
    "peak_rss_mb",
    "reset_peak_rss",
    "load_average",
    "machine_info",
    "format_table",
    "write_json",
    "read_json",
    "to_jsonable",
    "mean_iou",
    "f1_score",
]


# --------------------------------------------------------------------------------- timing


@dataclasses.dataclass
class Timing:
    """Repeated measurements of one operation.

    Attributes
    ----------
    walls, cpus : list of float
        Wall-clock and process-CPU seconds of every repetition.
    steps : list of dict
        Per repetition, seconds spent in named steps (e.g. ``{"fit": 0.05, "predict": 0.1}``)
        as reported by the measured function through its :class:`Stopwatch`.
    """

    walls: list[float]
    cpus: list[float]
    steps: list[dict[str, float]]

    @property
    def median(self) -> float:
        """Median wall-clock seconds."""
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        """Median process CPU seconds (all threads)."""
        return statistics.median(self.cpus)

    @property
    def repeats(self) -> int:
        return len(self.walls)

    def step_medians(self) -> dict[str, float]:
        """Median seconds of every named step over the repetitions that recorded it."""
        names = list(dict.fromkeys(name for steps in self.steps for name in steps))  # first-seen order
        return {name: statistics.median(s[name] for s in self.steps if name in s) for name in names}

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "cpu_s": self.cpu,
            "repeats": self.repeats,
            "walls_s": self.walls,
            "steps_s": self.step_medians(),
        }


class Stopwatch:
    """Times named steps inside one measured call: ``with watch("fit"): ...``."""

    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self._name = ""
        self._start = 0.0

    def __call__(self, name: str) -> Stopwatch:
        self._name = name
        return self

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.steps[self._name] = self.steps.get(self._name, 0.0) + time.perf_counter() - self._start


def measure(
    function: Callable[[Stopwatch], Any],
    *,
    repeats: int,
    budget_s: float = math.inf,
    min_repeats: int = 1,
) -> tuple[Timing, Any]:
    """Call ``function(stopwatch)`` up to ``repeats`` times and time each call.

    Slow operations get fewer repetitions: after ``min_repeats`` calls, no new call starts once
    the calls so far took ``budget_s`` seconds in total.

    Parameters
    ----------
    function : callable taking a :class:`Stopwatch`
        The operation; it may time its own steps with the stopwatch.
    repeats : int
        Most repetitions.
    budget_s : float
        Seconds after which no further repetition starts (``min_repeats`` always run).
    min_repeats : int
        Fewest repetitions.

    Returns
    -------
    timing : Timing
    result : whatever the last call returned
    """
    walls, cpus, steps = [], [], []
    result = None
    spent = 0.0
    for index in range(max(1, repeats)):
        if index >= max(1, min_repeats) and spent >= budget_s:
            break
        watch = Stopwatch()
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(watch)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        steps.append(watch.steps)
        spent += walls[-1]
    return Timing(walls, cpus, steps), result


def measure_pair(
    ours: Callable[[Stopwatch], Any],
    reference: Callable[[Stopwatch], Any],
    *,
    repeats: int,
    budget_s: float = math.inf,
    min_repeats: int = 1,
) -> tuple[Timing, Any, Timing, Any]:
    """Time two operations alternately (ours, reference, ours, ...), each as :func:`measure` does.

    Alternating exposes both to the same background load, which drifts on a shared machine.
    Each side stops on its own budget.

    Returns
    -------
    ours_timing, ours_result, reference_timing, reference_result
    """
    sides = [([], [], [], None, 0.0), ([], [], [], None, 0.0)]
    for index in range(max(1, repeats)):
        for side, function in enumerate((ours, reference)):
            walls, cpus, steps, result, spent = sides[side]
            if index >= max(1, min_repeats) and spent >= budget_s:
                continue
            watch = Stopwatch()
            wall, cpu = time.perf_counter(), time.process_time()
            result = function(watch)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            steps.append(watch.steps)
            sides[side] = (walls, cpus, steps, result, spent + walls[-1])
    (w0, c0, s0, r0, _), (w1, c1, s1, r1, _) = sides
    return Timing(w0, c0, s0), r0, Timing(w1, c1, s1), r1


# --------------------------------------------------------------------------------- memory


def rss_mb() -> float:
    """Current resident set size of this process in MB (2**20 bytes)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover - psutil is a dependency; /proc is the fallback
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    """Highest resident set size of this process since it started or since
    :func:`reset_peak_rss`, in MB.

    Linux: ``VmHWM`` of ``/proc/self/status``. Not ``ru_maxrss``: Linux carries that over
    ``fork`` + ``exec``, so a subprocess started by a big parent reports the parent's size.
    """
    peak_kb = _proc_status_kb("VmHWM")
    if peak_kb is not None:
        return peak_kb / 2**10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # pragma: no cover - not Linux
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # macOS bytes, else kB


def reset_peak_rss() -> bool:
    """Restart :func:`peak_rss_mb` from the current RSS (Linux ``clear_refs``); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:  # pragma: no cover - not Linux, or not permitted
        return False


# --------------------------------------------------------------------------------- machine


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return []


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not on Linux
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:  # pragma: no cover
        return None


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, OS, Python and library versions, load average now."""
    versions = {}
    for name in ("numpy", "scipy", "scikit-image", "scikit-learn", "numba", "pillow"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing version is reported, never fatal
            versions[name] = "unknown"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "load_average": load_average(),
    }


# --------------------------------------------------------------------------------- output


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]], *, align: str | None = None) -> str:
    """A Markdown table (readable as plain text too) of ``rows`` under ``header``.

    ``align`` holds one character per column, "l" or "r" (default: first column left, rest right).
    """
    align = align or "l" + "r" * (len(header) - 1)
    cells = [[str(h) for h in header]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        padded = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if a == "r" else (":" + "-" * (w + 1)) for w, a in zip(widths, align))
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays, paths, tuples and dataclasses turned into JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (temp file + rename), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(to_jsonable(data), indent=2, allow_nan=False) + "\n")
    os.replace(temporary, path)


def read_json(path: str | os.PathLike) -> Any | None:
    """The JSON value in ``path``, or None when it is missing or not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------- accuracy


def mean_iou(predicted: np.ndarray, truth: np.ndarray, classes: Sequence[int]) -> float:
    """Mean over ``classes`` of intersection over union of ``predicted == c`` and ``truth == c``."""
    scores = []
    for c in classes:
        p, t = predicted == c, truth == c
        union = np.count_nonzero(p | t)
        scores.append(np.count_nonzero(p & t) / union if union else 1.0)
    return float(np.mean(scores))


def f1_score(predicted: np.ndarray, truth: np.ndarray, positive: int) -> float:
    """F1 (Dice) of the ``positive`` class: 2 TP / (2 TP + FP + FN)."""
    p, t = predicted == positive, truth == positive
    true_pos = np.count_nonzero(p & t)
    denominator = np.count_nonzero(p) + np.count_nonzero(t)
    return 2.0 * true_pos / denominator if denominator else 1.0
