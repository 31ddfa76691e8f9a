"""Time from pressing Refine (and from the last frame) to a complete UI, in headless Chromium.

Serves ``app.build_demo`` around the shipped checkpoints (CPU) on loopback, loads a scene,
presses Refine and watches the page every 20 ms from inside the browser: ``pressed`` is the
moment before the click on Refine, ``last frame`` is
when the caption first shows the final iteration ("layer 2 · iteration K / K"), ``complete``
when the Play button is enabled and the metrics table (scenes with ground truth) has rows,
i.e. everything a user can do after a run is there. Uses Debian's /usr/bin/chromium.

    python benchmarks/ui_latency.py                    # Middlebury at 1 and 100 points, 3 runs
    python benchmarks/ui_latency.py --points 4 --repeats 5
    python benchmarks/ui_latency.py --settle 4         # each run on an idle page

By default each run starts right after the previous one is complete (while that run's
downloads are still being made); ``--settle S`` waits S seconds first, as a user who looks
at a result before running again. Every run draws new points (its own seed), and Refine is
pressed 0.8 s after the plan shows (``--plan-wait``); what the studio prefetches in that
time (G and the baselines, :mod:`studio.prefetch`) is then not computed after the click.

Prints one line per run and the median per setting. Timing depends on the machine's load;
quote the machine and the load average with a figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from helpers import CHROMIUM, CHROMIUM_ARGS, serve_blocks  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

import app  # noqa: E402
from sdr_core import load_pipeline  # noqa: E402

WATCH_JS = """
() => {
  window.__t = {pressed: performance.now()};
  const start = /^(initial depth|layer 1)/;
  const final = /^layer 2 · iteration (\\d+) \\/ \\1\\b/;
  const tick = () => {
    const now = performance.now();
    const caption = document.querySelector('#caption textarea');
    const play = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Play');
    const rows = document.querySelectorAll('table tbody tr').length;
    if (!window.__t.started && caption && start.test(caption.value)) window.__t.started = now;
    if (window.__t.started && !window.__t.last && caption && final.test(caption.value)) {
      window.__t.last = now; window.__t.caption = caption.value;
    }
    if (window.__t.last && !window.__t.done && play && !play.disabled
        && (rows > 0 || window.__noGt)) window.__t.done = now;
    if (!window.__t.done) setTimeout(tick, 20);
  };
  tick();
}
"""


def _run_once(
    page, points: int, seed: int, settle_s: float = 0.0, plan_wait_s: float = 0.8
) -> tuple[float, float, int]:
    """Refine once: (seconds from Refine and from the last frame to a complete UI, frames).

    The points are drawn anew (``seed``), so each run has a plan of its own; Refine is
    pressed ``plan_wait_s`` after the plan shows.
    """
    page.wait_for_timeout(1000 * settle_s)
    number = page.get_by_label("N", exact=True)
    number.fill(str(points))
    number.press("Enter")
    seed_box = page.get_by_label("Seed", exact=True)
    seed_box.fill(str(seed))
    seed_box.press("Enter")
    expect(page.locator("#plan")).to_contain_text(f"{points} depth point")
    page.wait_for_timeout(1000 * plan_wait_s)
    page.evaluate(WATCH_JS)
    page.get_by_role("button", name="Refine").click()
    page.wait_for_function("() => window.__t && window.__t.done", timeout=300_000)
    times = page.evaluate("() => window.__t")
    frames = int(times["caption"].split("/")[1].split()[0])
    done = times["done"]
    return (done - times["pressed"]) / 1000.0, (done - times["last"]) / 1000.0, frames


def main() -> None:
    """Serve the app, drive it in Chromium and print the latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds to wait before each run (default 0)"
    )
    parser.add_argument(
        "--plan-wait",
        type=float,
        default=0.8,
        help="seconds between the plan showing and Refine (default 0.8): what is prefetched "
        "meanwhile (studio.prefetch) need not be computed after the click",
    )
    args = parser.parse_args()
    pipeline = load_pipeline(device="cpu")
    with serve_blocks(app.build_demo(pipeline)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(180_000)
        expect.set_options(timeout=180_000)
        page.goto(url)
        page.get_by_text("Middlebury Motorcycle").first.click()
        expect(page.locator("#plan")).to_contain_text("depth points")
        for points in args.points:
            whole, closing = [], []
            for repeat in range(args.repeats):
                seed = 1 + len(args.points) * repeat + args.points.index(points)
                from_refine, latency, frames = _run_once(
                    page, points, seed, args.settle, args.plan_wait
                )
                whole.append(from_refine)
                closing.append(latency)
                print(
                    f"{points} points, run {repeat + 1}: "
                    f"Refine -> complete UI {from_refine:.2f} s, "
                    f"last frame -> complete UI {latency:.2f} s (layer-2 iterations {frames})",
                    flush=True,
                )
            print(
                f"{points} points: median Refine -> complete {statistics.median(whole):.2f} s, "
                f"last frame -> complete {statistics.median(closing):.2f} s",
                flush=True,
            )
        browser.close()
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
