"""Browser latency on a volume: mouse-up to the new overlay of the shown slice, 256³ voxels.

    python bench/volume_browser_latency.py                  # both feature modes, 8 strokes each
    python bench/volume_browser_latency.py --modes 3d --strokes 12

Starts the app and Debian's headless Chromium (tests/e2e/helpers.py), uploads a synthetic
256 x 256 x 256 uint8 z-stack (blobs of smoothed noise, ImageJ TIFF with a voxel size), picks
the feature mode (2-D per slice or 3-D), goes to slice 100, draws one warm-up stroke per class
(the first segmentation needs both), then N strokes alternating the classes: half on slice 100,
half on slice 160 after moving the slider there. Each stroke is timed as in
``bench/browser_latency.py`` (its page probe and :func:`browser_latency.measure_stroke`):
``overlay`` = mouse-up -> the status marker shows the new update AND the new picture is
painted. The slider move to slice 160 is timed too (key press -> new overlay painted): it is
the one step that computes features (3-D: the slab of 8 slices holding the new slice with its
context in z). Then the slider is scrolled one slice at a time from 160 to 176, resting
``--dwell`` seconds on each slice as a person looking at it would: each step is timed the same
way; the steps to 168 and 176 reach a new 3-D slab (the one made ahead in the background
while the strokes were drawn, and while the slices 169..175 were scrolled). Numbers are
reported, never asserted; the load average is recorded alongside.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import browser_latency  # noqa: E402
import common  # noqa: E402

from tests.e2e import helpers as H  # noqa: E402

RESULTS = HERE / "results" / "volume_browser.json"
SHAPE = (256, 256, 256)
SPACING = (1.0, 0.5, 0.5)  # µm
SLICES = (100, 160)
SCROLL_TO = 176  # from the second slice, one slice at a time: crosses the 3-D slabs at 168 and 176
SLAB_STARTS = (168, 176)
MODE_TITLES = {"per_slice": "2-D per slice", "3d": "3-D"}
BACKGROUND, BLOB = 1, 2


def blobs_volume(path: Path, seed: int = 0) -> np.ndarray:
    """Write the 256³ ImageJ TIFF at ``path``; returns its truth (bool, True = blob)."""
    import tifffile
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=SHAPE).astype(np.float32), 8)
    truth = field > np.quantile(field, 0.8)
    data = (60 + 120 * truth + rng.normal(0, 15, SHAPE)).clip(0, 255).astype(np.uint8)
    dz, dy, dx = SPACING
    metadata = {"axes": "ZYX", "spacing": dz, "unit": "um"}
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / dx, 1 / dy), metadata=metadata)
    return truth


def plan_strokes(inside: np.ndarray, count: int, rng) -> list[list[tuple[float, float]]]:
    """``count`` horizontal 30-px strokes (as (column, row) points) well inside ``inside`` (H, W)."""
    from scipy import ndimage as ndi

    distance = ndi.distance_transform_edt(inside)
    rows, cols = np.nonzero(distance > 5)
    strokes = []
    for index in rng.permutation(len(rows)):
        r, c = int(rows[index]), int(cols[index])
        if 15 <= c < inside.shape[1] - 15 and (distance[r, c - 15 : c + 16] > 3).all():
            strokes.append([(c - 15.0, float(r)), (float(c), float(r)), (c + 15.0, float(r))])
            if len(strokes) == count:
                return strokes
    raise RuntimeError("not enough room for the strokes")


def go_to_slice(page, z: int) -> float:
    """Move the slider to ``z`` (as tests/e2e/test_volume_browser.py); returns key press -> new
    overlay painted, in seconds."""
    slider = H.key_locator(page, "w_frame").locator('input[type="range"]')
    before, shown = H.update_number(page), H.background_hash(page)
    slider.fill(str(z - 1))
    slider.focus()
    start = time.perf_counter()
    page.keyboard.press("ArrowRight")
    H.wait_for_update(page, before + 1)
    H.wait_for_background_change(page, shown)
    seconds = time.perf_counter() - start
    H.wait_until_settled(page)
    return seconds


def scroll(page, start: int, stop: int, dwell: float) -> dict[int, float]:
    """Slider one slice at a time from ``start`` to ``stop``, resting ``dwell`` s on each slice:
    {slice: key press -> new overlay painted, s}."""
    steps = {}
    for z in range(start + 1, stop + 1):
        steps[z] = round(go_to_slice(page, z), 3)
        time.sleep(dwell)
    return steps


def run_mode(browser, server, source: Path, truth: np.ndarray, mode: str, strokes: int, dwell: float) -> dict:
    rng = np.random.default_rng(1)
    page = H.new_page(browser)
    try:
        page.add_init_script(browser_latency.PROBE_JS)
        H.open_app(page, server.url)
        before = H.update_number(page)
        start = time.perf_counter()
        H.upload_files(page, "w_image_upload", source)
        H.wait_for_update(page, before + 1)
        H.wait_until_settled(page)
        opened = time.perf_counter() - start
        if mode != "per_slice":
            H.pick_radio(page, "w_volume_features", MODE_TITLES[mode])
            H.wait_until_settled(page)
        height, width = SHAPE[1:]
        first_slice, second_slice = SLICES
        go_to_slice(page, first_slice)
        half = strokes // 2
        plans = {}
        for z, count in ((first_slice, half + 1), (second_slice, strokes - half)):
            plans[z] = {
                BACKGROUND: plan_strokes(~truth[z], count, rng),
                BLOB: plan_strokes(truth[z], count, rng),
            }
        box = H.canvas_box(page, width, height)
        H.pick_class(page, BACKGROUND - 1)
        H.draw_and_wait(page, box, plans[first_slice][BACKGROUND].pop())
        first = browser_latency.measure_stroke(
            page, H.canvas_box(page, width, height), BLOB, plans[first_slice][BLOB].pop()
        )
        measured = []
        for i in range(strokes):
            if i == half:
                slider_s = go_to_slice(page, second_slice)
            z = first_slice if i < half else second_slice
            label = BACKGROUND if i % 2 == 0 else BLOB
            box = H.canvas_box(page, width, height)
            measured.append({"slice": z, **browser_latency.measure_stroke(page, box, label, plans[z][label].pop())})
        steps = scroll(page, second_slice, SCROLL_TO, dwell)
    finally:
        page.context.close()
    overlay = [m["overlay_ms"] for m in measured]
    return {
        "mode": mode,
        "open_s": round(opened, 2),
        "first_overlay_ms": first["overlay_ms"],
        "slider_to_overlay_s": round(slider_s, 2),
        "overlay_median_ms": round(statistics.median(overlay), 1),
        "overlay_p90_ms": round(float(np.percentile(overlay, 90)), 1),
        "median_s": round(statistics.median(overlay) / 1000, 4),
        "p90_s": round(float(np.percentile(overlay, 90)) / 1000, 4),
        "scroll_dwell_s": dwell,
        "scroll_new_slab_s": [steps[z] for z in SLAB_STARTS],
        "scroll_same_slab_median_s": round(statistics.median(t for z, t in steps.items() if z not in SLAB_STARTS), 3),
        "scroll_steps_s": steps,
        "per_stroke": measured,
    }


def run(modes: list[str], strokes: int, dwell: float, log_dir: Path) -> dict:
    from playwright.sync_api import sync_playwright

    source = log_dir / "blobs_256.tif"
    truth = blobs_volume(source)
    rows = []
    with H.running_server(log_dir / "server.log") as server, sync_playwright() as playwright:
        browser = H.launch_browser(playwright)
        try:
            for mode in modes:
                rows.append(run_mode(browser, server, source, truth, mode, strokes, dwell))
        finally:
            browser.close()
    return {
        "volume": f"{SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} uint8 grey, voxel {SPACING} µm, synthetic blobs",
        "strokes_per_mode": strokes,
        "modes": rows,
        "load_average": common.load_average(),
        "machine": common.machine_info(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def report(results: dict) -> str:
    rows = [
        [
            MODE_TITLES[r["mode"]],
            f"{r['overlay_median_ms']:.0f}",
            f"{r['overlay_p90_ms']:.0f}",
            f"{r['first_overlay_ms']:.0f}",
            f"{r['slider_to_overlay_s']:.2f}",
            " / ".join(f"{t:.2f}" for t in r["scroll_new_slab_s"]),
            f"{r['scroll_same_slab_median_s']:.2f}",
            f"{r['open_s']:.1f}",
        ]
        for r in results["modes"]
    ]
    return "\n".join(
        [
            f"Browser, volume {results['volume']}: mouse-up -> overlay of the shown slice, "
            f"{results['strokes_per_mode']} strokes per mode; scroll 160 -> {SCROLL_TO} resting "
            f"{results['modes'][0]['scroll_dwell_s']} s a slice; load average {results['load_average']}",
            common.format_table(
                [
                    "features",
                    "median ms",
                    "p90 ms",
                    "first overlay ms",
                    "slider -> overlay s",
                    "scroll to 168 / 176 s",
                    "scroll within slab s",
                    "upload -> ready s",
                ],
                rows,
                align="lrrrrrrr",
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", nargs="+", choices=list(MODE_TITLES), default=list(MODE_TITLES))
    parser.add_argument("--strokes", type=int, default=8, help="measured strokes per mode (after 2 warm-up strokes)")
    parser.add_argument("--dwell", type=float, default=0.5, help="seconds resting on each slice while scrolling")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file to write")
    args = parser.parse_args(argv)
    return browser_latency.run_and_report(
        lambda log_dir: run(args.modes, args.strokes, args.dwell, log_dir), report, args.output
    )


if __name__ == "__main__":
    sys.exit(main())
