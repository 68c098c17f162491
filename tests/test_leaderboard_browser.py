"""The leaderboard in a real headless Chromium, opened from file:// as a reader would.

Checks what only a browser can: no console errors, nothing requested from the network, a header
click sorts the table, a task link opens a page whose SVG chart renders, and a hostile task name is
shown as text. Screenshots are saved in the test's temp dir for a human look.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import recordfactory as rf
from dendrobench.leaderboard.build import build_site

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]

pytestmark = pytest.mark.browser


def _playwright():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (Debian package `chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the python package `playwright` is not installed")
    return sync_playwright


def _site(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    rf.write(results, rf.paired("bbbp", {"baseline": [.30, .32, .28, .31, .29], "dendrites": [.20, .22, .19, .21, .20],
                                         "wide": [.25, .30, .27, .26, .28], "compressed": [.31, .30, .30, .33, .29]}))
    rf.write(results, rf.paired("cifar10", {"baseline": [.10, .12, .11], "dendrites": [.11, .11, .12],
                                            "wide": [.10, .11, .12]}, modality="image"))
    rf.write(results, rf.paired("<script>alert(1)</script>", {"baseline": [.5, .4], "dendrites": [.45, .41]},
                                modality="text", engine="cc"))
    rf.write(results, [rf.make_record("cifar10", "dendrites", 3, None, status="diverged",
                                      message="loss is NaN", modality="image")])
    (results / "truncated.json").write_text('{"schema_version": 1, "task"')
    build_site([results], tmp_path / "site")
    return tmp_path / "site"


def test_site_in_chromium(tmp_path: Path) -> None:
    sync_playwright = _playwright()
    site = _site(tmp_path)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((site / "index.html").as_uri())
            page.wait_for_load_state("load")

            # the hostile task name is text, not a script
            assert page.get_by_role("link", name="<script>alert(1)</script> (ds)").count() == 1

            # clicking the "RER vs baseline" header sorts by it (ascending, then descending)
            table = page.locator("#leaderboard")
            header = table.locator("th[data-col=rer]")

            def rer_order() -> list[float]:
                vals = table.locator("tbody tr td:nth-child(10)").evaluate_all(
                    "cells => cells.map(c => c.getAttribute('data-sort'))")
                return [float(v) for v in vals if v]

            header.click()
            assert header.get_attribute("aria-sort") == "ascending"
            asc = rer_order()
            assert asc == sorted(asc) and len(asc) == 3
            header.click()
            assert header.get_attribute("aria-sort") == "descending"
            assert rer_order() == sorted(asc, reverse=True)

            # the modality filter hides the other rows
            page.select_option("select[data-filter=modality]", "image")
            assert table.locator("tbody tr:visible").count() == 1
            page.select_option("select[data-filter=modality]", "")
            assert table.locator("tbody tr:visible").count() == 3
            page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

            # a task link opens its page with its charts
            page.get_by_role("link", name="bbbp (ds)").click()
            page.wait_for_load_state("load")
            assert page.title().startswith("bbbp")
            chart = page.locator("svg.chart").first
            chart.wait_for(state="visible")
            box = chart.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100
            assert page.locator("svg.chart path.cycle").count() > 0  # dendrite cycles marked
            page.screenshot(path=str(tmp_path / "task.png"), full_page=True)

            # the hostile task's page renders its title literally too
            page.goto((site / "index.html").as_uri())
            page.get_by_role("link", name="<script>alert(1)</script> (ds)").click()
            page.wait_for_load_state("load")
            assert page.locator("h1").inner_text() == "<script>alert(1)</script>"
        finally:
            browser.close()
    assert not errors, errors
    outside = [u for u in requests if not u.startswith("file://")]
    assert not outside, f"network requests from a self-contained page: {outside}"
    assert (tmp_path / "index.png").stat().st_size > 10_000
