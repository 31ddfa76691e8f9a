"""End to end in a real browser: headless Chromium (Debian's /usr/bin/chromium) via Playwright.

Loads the page, runs the Middlebury example with a hole, waits for the final frame and saves a
screenshot into the test's temporary folder. The screenshots in docs/ come from
scripts/screenshots.py, which drives the same page with the full-size pipeline.
"""

from __future__ import annotations

import re

import pytest
from helpers import CHROMIUM, CHROMIUM_ARGS, serve_tiny_app  # noqa: E402

pytest.importorskip("gradio", reason="the browser test needs gradio")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs the playwright Python package"
)
if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium); never `playwright install`",
        allow_module_level=True,
    )


pytestmark = pytest.mark.e2e

TIMEOUT_MS = 45_000


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with serve_tiny_app(tmp_path_factory) as address:
        yield address


@pytest.fixture
def page():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        yield page
        browser.close()


def test_example_with_click_and_hole_runs_to_the_final_frame(url, page, tmp_path):
    page.goto(url)
    page.get_by_text("Middlebury Motorcycle").first.click()
    plan = page.locator("#plan")
    sync_api.expect(plan).to_contain_text("100 depth points")

    points = page.locator("#points_view img").first
    box = points.bounding_box()
    points.click(position={"x": box["width"] * 0.8, "y": box["height"] * 0.9})
    sync_api.expect(page.locator("#click_message")).to_contain_text("Added a point")

    page.get_by_role("tab", name="Hole (brush)").click()
    page.get_by_role("button", name="Centre hole (paper, Table 4)").click()
    sync_api.expect(plan).to_contain_text("dropped by the hole")

    page.get_by_role("button", name="Refine").click()
    caption = page.locator("#caption textarea")
    sync_api.expect(caption).to_have_value(re.compile(r"^layer 2 · iteration 6 / 6"))
    sync_api.expect(page.locator("#run_note")).to_contain_text("frames in")
    frame = page.locator("#frame img").first
    sync_api.expect(frame).to_be_visible()
    assert frame.evaluate("img => img.naturalWidth") > 3 * 96  # depth | mask | error

    page.get_by_role("button", name="Play").click()  # replays the stored frames from 0
    sync_api.expect(caption).to_have_value(re.compile(r"^layer 1 · iteration \d+ / \d+$"))
    page.get_by_role("button", name="Pause").click()

    shot = tmp_path / "after_run.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
