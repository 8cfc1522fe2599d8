"""Feature computation speed against scikit-image's multiscale_basic_features.

Prints median wall and CPU times (seconds, CPU summed over threads) per image size and feature
preset, next to scikit-image measured in the same run. On a shared machine wall times are noisy:
compare ratios, and CPU times, not absolute seconds.

    python bench/features_speed.py [--repeats 5] [--sizes 512 1024]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skimage.feature import multiscale_basic_features  # noqa: E402

from seg.features import PRESETS, compute_features  # noqa: E402


def _median_time(function, repeats: int) -> tuple[float, float]:
    """Median (wall, process CPU) seconds of ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    compute_features(rng.random((64, 64), dtype=np.float32))  # numba compile / cache load
    print(
        f"{'image':<14}{'preset':<22}{'F':>4}{'wall s':>8}{'cpu s':>8}"
        f"{'skimage wall':>13}{'cpu':>7}{'speed-up wall':>14}{'cpu':>6}"
    )
    for size in args.sizes:
        for channels in (1, 3):
            shape = (size, size) if channels == 1 else (size, size, channels)
            image = rng.random(shape, dtype=np.float32)
            axis = None if channels == 1 else -1
            ref_wall, ref_cpu = _median_time(
                lambda image=image, axis=axis: multiscale_basic_features(
                    image, sigma_min=1, sigma_max=16, channel_axis=axis
                ),
                args.repeats,
            )
            label = f"{size}x{size}x{channels}"
            for name, settings in PRESETS.items():
                wall, cpu = _median_time(
                    lambda image=image, settings=settings: compute_features(image, settings), args.repeats
                )
                n_features = settings.n_features(channels)
                print(
                    f"{label:<14}{name:<22}{n_features:>4}{wall:>8.3f}{cpu:>8.3f}"
                    f"{ref_wall:>13.3f}{ref_cpu:>7.3f}{ref_wall / wall:>13.1f}x"
                    f"{ref_cpu / cpu:>5.1f}x"
                )


if __name__ == "__main__":
    main()
