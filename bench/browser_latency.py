"""Browser latency: mouse-up to the new overlay on screen, in the real app, on a 1 MP image.

    python bench/browser_latency.py                 # 10 measured strokes -> bench/results/browser.json
    python bench/browser_latency.py --strokes 20

Starts ``streamlit run streamlit_app.py`` and Debian's headless Chromium (tests/e2e/helpers.py),
uploads a 1024x1024 mosaic of four ISBI 2012 slices, draws one warm-up stroke per class (the
first segmentation needs both), then N more strokes alternating membrane / cell, and times each:

* ``marker``  mouse-up -> the status marker shows the new "update #N" (the run has finished);
* ``paint``   mouse-up -> the canvas background repainted with a new picture (what the user
  sees; often before the marker, which waits for work done after the canvas is drawn);
* ``overlay`` mouse-up -> both: the marker shows the new number AND the new picture is painted
  (the headline figure: ``median_s`` / ``p90_s`` in the JSON).

Both are measured on the page's own clock: a script injected before the app loads records the
``pointerup`` time, the moment the marker text changes, and every paint of a new background
image onto the background canvas. Numbers are reported, never asserted (shared 2-core machine:
the load average is recorded alongside).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import common  # noqa: E402
import datasets  # noqa: E402

from tests.e2e import helpers as H  # noqa: E402

RESULTS = HERE / "results" / "browser.json"
SCREENSHOT = REPO / "tests" / "e2e" / "artifacts" / "bench-browser-latency.png"  # git-ignored
MEMBRANE, CELL = 1, 2  # class 1 and 2 of the app's radio (first and second option)
SLICES = (0, 1, 2, 3)  # ISBI slices of the 2x2 mosaic
STROKE_TIMEOUT_MS = 60_000

# Injected before the app's own scripts: timestamps on the page clock (performance.now()).
PROBE_JS = r"""
(() => {
  const probe = window.__segProbe = {ups: [], paints: [], markers: {}, lastSrc: null};
  window.addEventListener('pointerup', () => probe.ups.push(performance.now()), true);
  const draw = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (image, ...rest) {
    const result = draw.call(this, image, ...rest);
    // The component paints the background image on its own canvas; a new src = a new picture.
    if (this.canvas && this.canvas.classList && this.canvas.classList.contains('dc-background-canvas')
        && image && typeof image.src === 'string' && image.src !== probe.lastSrc) {
      probe.lastSrc = image.src;
      probe.paints.push(performance.now());
    }
    return result;
  };
  setInterval(() => {
    const status = document.querySelector('.st-key-status');
    const match = status && /update #(\d+)/.exec(status.textContent);
    if (match && !(match[1] in probe.markers)) probe.markers[match[1]] = performance.now();
  }, 5);
})();
"""


# --------------------------------------------------------------------------- image and strokes


def mosaic(directory: Path) -> tuple[Path, np.ndarray]:
    """A 1024x1024 PNG of four ISBI slices and its truth (1 = membrane, 2 = cell)."""
    from PIL import Image

    pairs = [datasets.load_isbi(i) for i in SLICES]
    image = datasets.tile_image([p[0] for p in pairs], 2)
    truth = datasets.tile_image([p[1] for p in pairs], 2)
    path = directory / "isbi_mosaic_1024.png"
    Image.fromarray(image).save(path)
    return path, truth


def _cell_stroke(truth: np.ndarray, distance: np.ndarray, rng) -> list[tuple[float, float]]:
    """A horizontal stroke of ~40 px well inside one cell, as (column, row) points."""
    rows, cols = np.nonzero(distance > 14)
    for index in rng.permutation(len(rows)):
        r, c = int(rows[index]), int(cols[index])
        if c - 20 >= 0 and c + 20 < truth.shape[1] and (distance[r, c - 20 : c + 21] > 6).all():
            return [(c - 20.0, float(r)), (float(c), float(r)), (c + 20.0, float(r))]
    raise RuntimeError("no cell interior wide enough for a 40 px stroke")


def _membrane_stroke(skeleton: np.ndarray, rng, length: int = 30) -> list[tuple[float, float]]:
    """A stroke following the membrane skeleton for ``length`` pixels, as (column, row) points."""
    height, width = skeleton.shape
    starts = np.argwhere(skeleton)
    for index in rng.permutation(len(starts))[:200]:
        path = [tuple(starts[index])]
        seen = {path[0]}
        while len(path) < length:
            r, c = path[-1]
            step = next(
                (
                    (r + dr, c + dc)
                    for dr in (-1, 0, 1)
                    for dc in (-1, 0, 1)
                    if (dr or dc)
                    and 0 <= r + dr < height
                    and 0 <= c + dc < width
                    and skeleton[r + dr, c + dc]
                    and (r + dr, c + dc) not in seen
                ),
                None,
            )
            if step is None:
                break
            path.append(step)
            seen.add(step)
        if len(path) == length:
            return [(float(c), float(r)) for r, c in path[::5]] + [(float(path[-1][1]), float(path[-1][0]))]
    raise RuntimeError("no membrane skeleton branch long enough for a stroke")


def plan_strokes(truth: np.ndarray, count: int, seed: int = 0) -> list[tuple[int, list[tuple[float, float]]]]:
    """``count`` strokes (label, points) alternating membrane and cell, membrane first."""
    from scipy import ndimage as ndi
    from skimage.morphology import skeletonize

    rng = np.random.default_rng(seed)
    distance = ndi.distance_transform_edt(truth == CELL)
    skeleton = skeletonize(truth == MEMBRANE)
    return [
        (MEMBRANE, _membrane_stroke(skeleton, rng)) if i % 2 == 0 else (CELL, _cell_stroke(truth, distance, rng))
        for i in range(count)
    ]


# --------------------------------------------------------------------------- measuring


def _server_timings(status: str) -> dict[str, float]:
    """{"features": ms, "train": ms, ...} as the status marker lists them."""
    return {name: float(ms) for name, ms in re.findall(r"(features|train|predict|render) (\d+) ms", status)}


def measure_stroke(page, box: H.CanvasBox, label: int, points) -> dict:
    """Draw one stroke and time mouse-up -> marker and mouse-up -> new background painted."""
    H.pick_class(page, label - 1)
    before = H.update_number(page)
    paints = page.evaluate("window.__segProbe.paints.length")
    ups = page.evaluate("window.__segProbe.ups.length")
    H.draw_stroke(page, box, points)
    target = before + 1
    page.wait_for_function(
        "([n, p]) => { const q = window.__segProbe; return (String(n) in q.markers) && q.paints.length > p; }",
        arg=[target, paints],
        timeout=STROKE_TIMEOUT_MS,
        polling=20,
    )
    H.wait_for_update(page, target)
    probe = page.evaluate("window.__segProbe")
    up = probe["ups"][ups]
    marker = probe["markers"][str(target)]
    painted = min(probe["paints"][paints:])
    return {
        "label": label,
        "update": target,
        "marker_ms": round(marker - up, 1),
        "paint_ms": round(painted - up, 1),
        "overlay_ms": round(max(marker, painted) - up, 1),
        "server_ms": _server_timings(H.status_text(page)),
    }


def run(strokes: int, log_dir: Path) -> dict:
    """Start the server and the browser, draw, measure; returns the results."""
    from playwright.sync_api import sync_playwright

    image_path, truth = mosaic(log_dir)
    plan = plan_strokes(truth, strokes + 2)
    height, width = truth.shape
    with H.running_server(log_dir / "server.log") as server, sync_playwright() as playwright:
        browser = H.launch_browser(playwright)
        try:
            page = H.new_page(browser)
            page.add_init_script(PROBE_JS)
            H.open_app(page, server.url)
            before = H.update_number(page)
            H.upload_files(page, "w_image_upload", image_path)
            H.wait_for_update(page, before + 1)
            H.wait_until_settled(page)
            (label, points), (second_label, second_points) = plan[:2]
            _first_stroke(page, H.canvas_box(page, width, height), label, points)
            first_overlay = measure_stroke(page, H.canvas_box(page, width, height), second_label, second_points)
            measured = []
            for label, points in plan[2:]:
                box = H.canvas_box(page, width, height)
                measured.append(measure_stroke(page, box, label, points))
            H.screenshot(page, SCREENSHOT)
        finally:
            browser.close()
    overlay = [m["overlay_ms"] for m in measured]
    marker = [m["marker_ms"] for m in measured]
    paint = [m["paint_ms"] for m in measured]
    return {
        "median_s": round(statistics.median(overlay) / 1000, 4),
        "p90_s": round(float(np.percentile(overlay, 90)) / 1000, 4),
        "overlay_median_ms": round(statistics.median(overlay), 1),
        "overlay_p90_ms": round(float(np.percentile(overlay, 90)), 1),
        "paint_median_ms": round(statistics.median(paint), 1),
        "paint_p90_ms": round(float(np.percentile(paint, 90)), 1),
        "marker_median_ms": round(statistics.median(marker), 1),
        "marker_p90_ms": round(float(np.percentile(marker, 90)), 1),
        "image": f"{width}x{height} uint8 grey, ISBI 2012 slices {list(SLICES)} as a 2x2 mosaic",
        "canvas": f"{box.width:.0f}x{box.height:.0f} screen px",
        "strokes": len(measured),
        "first_overlay": first_overlay,
        "per_stroke": measured,
        "load_average": common.load_average(),
        "machine": common.machine_info(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _first_stroke(page, box, label, points) -> dict:
    """The first stroke has no overlay (one class only): only its rerun is waited for."""
    H.pick_class(page, label - 1)
    number = H.draw_and_wait(page, box, points)
    return {"label": label, "update": number}


def report(results: dict) -> str:
    rows = [
        [
            i + 1,
            "membrane" if m["label"] == MEMBRANE else "cell",
            f"{m['paint_ms']:.0f}",
            f"{m['marker_ms']:.0f}",
            f"{m['overlay_ms']:.0f}",
            " ".join(f"{k} {v:.0f}" for k, v in m["server_ms"].items()),
        ]
        for i, m in enumerate(results["per_stroke"])
    ]
    for name in ("median", "p90"):
        rows.append(
            [
                name,
                "",
                f"{results[f'paint_{name}_ms']:.0f}",
                f"{results[f'marker_{name}_ms']:.0f}",
                f"{results[f'overlay_{name}_ms']:.0f}",
                "",
            ]
        )
    first = results["first_overlay"]
    return "\n".join(
        [
            f"Browser: mouse-up -> overlay on {results['image']} (canvas {results['canvas']}), "
            f"load average {results['load_average']}",
            common.format_table(
                ["stroke", "class", "paint ms", "marker ms", "overlay ms", "server (ms)"], rows, align="llrrrl"
            ),
            f"first overlay (second warm-up stroke, both classes drawn): paint {first['paint_ms']:.0f} ms, "
            f"marker {first['marker_ms']:.0f} ms, overlay {first['overlay_ms']:.0f} ms",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strokes", type=int, default=10, help="measured strokes (after 2 warm-up strokes)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file to write")
    args = parser.parse_args(argv)
    return run_and_report(lambda log_dir: run(args.strokes, log_dir), report, args.output)


def run_and_report(measure, describe, output: Path) -> int:
    """Run ``measure(log_dir)`` (server log in a temporary directory), write its results to
    ``output`` as JSON and print ``describe(results)``; on failure print the server log, return 1."""
    with tempfile.TemporaryDirectory(prefix="seg-browser-bench-") as tmp:
        log_dir = Path(tmp)
        try:
            results = measure(log_dir)
        except (H.E2EError, RuntimeError) as exc:
            print(
                f"browser benchmark failed: {exc}\nserver log:\n{H.log_tail(log_dir / 'server.log')}", file=sys.stderr
            )
            return 1
    common.write_json(output, results)
    print(describe(results))
    print(f"wrote {output.relative_to(REPO) if output.is_relative_to(REPO) else output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
