"""Take the app's screenshots for docs/ with headless Chromium (Debian's /usr/bin/chromium).

    python scripts/screenshots.py                # bundled checkpoints (random weights if absent)
    python scripts/screenshots.py --untrained    # force random weights
    python scripts/screenshots.py --out docs --side 304

States captured: the initial page, an example loaded, points clicked and a hole painted,
the animation mid-run, the finished run (metrics and chart), the point cloud, the teaching
view, the no-mask ablation, a photo uploaded without ground truth (clicked point, typed
depth, finished run) and a bad upload (a 1x1 PNG: the message). Never runs
`playwright install`: it uses the system Chromium.
"""

from __future__ import annotations

import argparse
import io
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from helpers import CHROMIUM, CHROMIUM_ARGS, serve_blocks  # noqa: E402

import app  # noqa: E402
from sdr_core import build_untrained_pipeline, load_pipeline  # noqa: E402

TIMEOUT_MS = 180_000

logger = logging.getLogger("screenshots")


def _pipeline(untrained: bool):
    if untrained:
        return build_untrained_pipeline(device="cpu")
    try:
        return load_pipeline(device="cpu")
    except (FileNotFoundError, ValueError) as error:
        logger.warning("no trained checkpoints (%s); using random weights", error)
        return build_untrained_pipeline(device="cpu")


def _paint_hole(page: Page) -> None:
    """Drag the brush over the right part of the motorcycle."""
    page.get_by_role("tab", name="Hole (brush)").click()
    canvas = page.locator("#hole_editor canvas").first
    expect(canvas).to_be_visible()
    expect(page.locator("#hole_editor .brush-loading")).to_have_count(0)  # image loaded
    box = canvas.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.42
    page.mouse.move(x0, y0)
    page.mouse.down()
    for row in range(5):
        y = y0 + row * 9
        xs = range(0, 121, 6) if row % 2 == 0 else range(120, -1, -6)
        for dx in xs:
            page.mouse.move(x0 + dx, y, steps=2)
    page.mouse.up()
    expect(page.locator("#plan")).to_contain_text("dropped by the hole")


def _wait_for_the_run(page: Page) -> None:
    """After Refine: the end of this run, not the note of the one before."""
    expect(page.locator("#run_note")).not_to_contain_text("frames in")  # "Running…"
    expect(page.locator("#run_note")).to_contain_text("frames in")
    page.wait_for_timeout(1500)


def _save(png: bytes, path: Path) -> None:
    """Store a screenshot with a 256-colour palette (a third of the size, no visible loss)."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    palette.save(path, optimize=True)
    logger.info("wrote %s", path)


def _shoot(page: Page, out: Path, name: str, full_page: bool = True) -> None:
    _save(page.screenshot(full_page=full_page), out / name)


def take(url: str, out: Path) -> None:
    """Drive the page through its main states and save one PNG per state."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        page.goto(url)
        expect(page.get_by_text("MSPN Studio").first).to_be_visible()
        page.wait_for_timeout(1000)
        _shoot(page, out, "app_initial.png")

        page.get_by_text("Middlebury Motorcycle").first.click()
        expect(page.locator("#plan")).to_contain_text("100 depth points")
        page.wait_for_timeout(800)
        _shoot(page, out, "app_example.png")

        points = page.locator("#points_view img").first
        box = points.bounding_box()
        for fx, fy in ((0.3, 0.75), (0.62, 0.55)):
            points.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
            page.wait_for_timeout(1200)
        _paint_hole(page)
        page.wait_for_timeout(500)
        _shoot(page, out, "app_hole_brush.png")
        page.get_by_role("tab", name="Points (click to add / remove)").click()
        page.wait_for_timeout(800)
        _shoot(page, out, "app_points_and_hole.png")

        points_number = page.get_by_label("N", exact=True)
        points_number.fill("3")  # few points: many iterations (eq. 13), a long animation
        points_number.press("Enter")
        expect(page.locator("#plan")).to_contain_text("depth points")
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Refine").click()
        caption = page.locator("#caption textarea")
        page.locator("#frame").scroll_into_view_if_needed()
        expect(caption).to_have_value(re.compile(r"^layer 1 · iteration ([5-9]|\d\d) "))
        _shoot(page, out, "app_running.png", full_page=False)  # the viewport: quick, mid-run
        expect(page.locator("#run_note")).to_contain_text("frames in")
        page.wait_for_timeout(1500)
        _shoot(page, out, "app_after_run.png")

        page.get_by_role("tab", name="Point cloud").click()  # the cloud is sent now
        expect(page.locator("#point_cloud .js-plotly-plot")).to_have_count(1)
        page.wait_for_timeout(2500)
        _shoot(page, out, "app_point_cloud.png")

        page.get_by_role("tab", name="Teaching view").click()
        view = page.locator("#inspect_view img").first
        expect(view).to_be_visible()
        box = view.bounding_box()
        # a few pixels from the clicked point, so its window holds a measurement
        view.click(position={"x": box["width"] * 0.31, "y": box["height"] * 0.76})
        expect(page.locator("#inspect_text")).to_contain_text("pixel (x=")
        page.wait_for_timeout(2000)
        _shoot(page, out, "app_teaching_view.png")

        page.get_by_label("No mask (ablation): watch errors propagate").check()
        page.get_by_role("button", name="Refine").click()
        _wait_for_the_run(page)
        page.locator("#frame").scroll_into_view_if_needed()
        _shoot(page, out, "app_no_mask.png")
        page.get_by_label("No mask (ablation): watch errors propagate").uncheck()
        _upload_states(page, out)
        browser.close()


def _upload_states(page: Page, out: Path) -> None:
    """A photo without ground truth (click, typed depth, run), then a bad upload."""
    import numpy as np

    scratch = Path(tempfile.mkdtemp(prefix="mspn_shots_"))
    photo, dot = scratch / "photo.png", scratch / "dot.png"
    Image.open(ROOT / "assets" / "study.png").save(photo)  # a photo without its depth
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(dot)
    page.reload()
    expect(page.get_by_text("MSPN Studio").first).to_be_visible()
    page.get_by_role("button", name="Upload your own").click()
    page.locator("#image_file input[type=file]").set_input_files(str(photo))
    expect(page.locator("#scene")).to_contain_text("ground truth: no")
    points = page.locator("#points_view img").first
    box = points.bounding_box()
    for fx, fy, depth in ((0.5, 0.55, "2.4"), (0.2, 0.8, "1.6")):
        points.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
        expect(page.locator("#click_message")).to_contain_text("type its measured depth")
        page.locator("#point_depth input").fill(depth)
        page.locator("#plan").click()  # leaving the box commits the depth
        page.wait_for_timeout(800)
    page.get_by_role("button", name="Refine").click()
    _wait_for_the_run(page)
    _shoot(page, out, "app_upload_no_gt.png")
    page.reload()
    expect(page.get_by_text("MSPN Studio").first).to_be_visible()
    page.get_by_role("button", name="Upload your own").click()
    page.locator("#image_file input[type=file]").set_input_files(str(dot))
    expect(page.get_by_text("smaller than the").first).to_be_visible()
    page.wait_for_timeout(500)
    _shoot(page, out, "app_bad_upload.png", full_page=False)


def main() -> None:
    """Serve the app on a free port and take the screenshots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--untrained", action="store_true", help="random weights")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with serve_blocks(app.build_demo(_pipeline(args.untrained))) as url:
        take(url, args.out)
    logger.info("done in %.0f s", time.perf_counter() - started)


if __name__ == "__main__":
    main()
