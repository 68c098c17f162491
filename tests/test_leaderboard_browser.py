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
    base = [.30, .32, .28, .31, .29, .30, .33, .27, .31, .30]
    rf.write(results, rf.paired("bbbp", {"baseline": base, "dendrites": [e - .08 for e in base],
                                         "wide": [e - .03 for e in base], "compressed": [e + .01 for e in base]},
                                budget="standard"))
    rf.write(results, rf.paired("cifar10", {"baseline": [.10, .12, .11], "dendrites": [.11, .11, .12],
                                            "wide": [.10, .11, .12]}, modality="image"))
    rf.write(results, rf.paired("cifar10", {"baseline": [.5, .6], "dendrites": [.4, .5]}, modality="image",
                                budget="smoke"))
    rf.write(results, rf.paired("<script>alert(1)</script>", {"baseline": [.5, .4], "dendrites": [.45, .41]},
                                modality="text", engine="cc"))
    rf.write(results, [rf.make_record("cifar10", "dendrites", 3, None, status="diverged",
                                      message="loss is NaN", modality="image")])
    (results / "truncated.json").write_text('{"schema_version": 1, "task"')
    build_site([results], tmp_path / "site", generated="2026-01-01")
    return tmp_path / "site"


def _in_first_viewport(page, locator) -> bool:
    box = locator.bounding_box()
    vp = page.viewport_size
    return (box is not None and box["height"] > 0 and box["y"] >= 0 and box["y"] + box["height"] <= vp["height"]
            and box["x"] >= 0 and box["x"] + box["width"] <= vp["width"])


def test_site_in_chromium(tmp_path: Path) -> None:
    sync_playwright = _playwright()
    site = _site(tmp_path)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("dialog", lambda d: (errors.append(f"dialog: {d.message}"), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((site / "index.html").as_uri())
            page.wait_for_load_state("load")
            table = page.locator("#leaderboard")

            # the hostile task name is text, not a script
            assert table.get_by_role("link", name="<script>alert(1)</script> (ds)").count() == 1

            # smoke rows are hidden until the toggle shows them, as pipeline checks
            main_rows = table.locator("tbody tr.main")
            assert main_rows.count() == 4 and table.locator("tbody tr.main:visible").count() == 3
            assert page.locator("#forest-main").is_visible() and not page.locator("#forest-all").is_visible()
            page.check("#show-smoke")
            assert table.locator("tbody tr.main:visible").count() == 4
            smoke_row = table.locator("tbody tr.main.smoke")
            assert "pipeline check" in smoke_row.inner_text()
            assert page.locator("#forest-all").is_visible() and not page.locator("#forest-main").is_visible()
            page.uncheck("#show-smoke")
            assert not smoke_row.is_visible()

            # grade marks: the 10-seed standard row is publishable, the quick one says quick
            bbbp = table.locator("tbody tr.main", has=page.get_by_role("link", name="bbbp (ds)"))
            assert "publishable" in bbbp.inner_text()
            cifar = table.locator("tbody tr.main:not(.smoke)", has=page.get_by_role("link", name="cifar10 (ds)"))
            assert "quick" in cifar.inner_text()

            # at a glance: the verdict cell and the forest plot are in the first viewport, no horizontal scroll
            for width in (1280, 1920):
                page.set_viewport_size({"width": width, "height": 800})
                page.evaluate("window.scrollTo(0, 0)")
                assert page.evaluate("document.documentElement.scrollWidth") <= width, f"horizontal scroll at {width}"
                assert _in_first_viewport(page, page.locator("#answer .lead")), width  # the answer across tasks
                assert _in_first_viewport(page, page.locator("#forest-main svg.forest")), width
                assert _in_first_viewport(page, bbbp.locator("td.verdict")), width
                assert "better" in bbbp.locator("td.verdict").inner_text()
                page.screenshot(path=str(tmp_path / f"index-{width}.png"))
            page.set_viewport_size({"width": 1280, "height": 800})

            # the forest plot: one row per visible comparison, the published 47 % claim marked on bbbp
            forest = page.locator("#forest-main svg.forest")
            assert forest.locator("g.forest-row").count() == 3
            assert forest.locator("path.claim-mark").count() >= 1 and forest.locator("line.zero").count() == 1

            # secondary columns fold out per row
            more = bbbp.locator("button.more-btn")
            details = page.locator("#" + bbbp.get_attribute("id") + "-more")
            assert not details.is_visible()
            more.click()
            assert details.is_visible() and "params ×" in details.inner_text().lower() and "47 %" in details.inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280

            # clicking the "RER vs baseline" header sorts by it (ascending, then descending); details follow
            header = table.locator("th[data-col=rer]")

            def rer_order() -> list[float]:
                vals = table.locator("tbody tr.main:visible td:nth-child(4)").evaluate_all(
                    "cells => cells.map(c => c.getAttribute('data-sort'))")
                return [float(v) for v in vals if v]

            header.click()
            assert header.get_attribute("aria-sort") == "ascending"
            asc = rer_order()
            assert asc == sorted(asc) and len(asc) == 3
            header.click()
            assert header.get_attribute("aria-sort") == "descending"
            assert rer_order() == sorted(asc, reverse=True)
            assert page.evaluate("(() => { const d = document.querySelector('tr.details:not([hidden])');"
                                 " return d.previousElementSibling.id + '-more' === d.id; })()")

            # the modality filter hides the other rows
            page.select_option("select[data-filter=modality]", "image")
            assert table.locator("tbody tr.main:visible").count() == 1
            page.select_option("select[data-filter=modality]", "")
            assert table.locator("tbody tr.main:visible").count() == 3
            page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

            # a task link opens its page: the verdict and the forest plot first, then the charts
            table.get_by_role("link", name="bbbp (ds)").click()
            page.wait_for_load_state("load")
            assert page.title().startswith("bbbp")
            for width in (1280, 1920):
                page.set_viewport_size({"width": width, "height": 800})
                page.evaluate("window.scrollTo(0, 0)")
                assert _in_first_viewport(page, page.locator("#verdict .verdict").first), width
                assert _in_first_viewport(page, page.locator("#verdict svg.forest")), width
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.screenshot(path=str(tmp_path / f"task-{width}.png"))
            chart = page.locator("svg.chart").nth(1)
            chart.wait_for(state="visible")
            box = chart.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100
            assert page.locator("svg.chart path.cycle").count() > 0  # dendrite cycles marked
            assert page.locator("svg.chart polygon.band").count() >= 2  # a band over seeds per arm
            assert page.locator("svg.chart rect.armmean").count() >= 3  # arm means with error bars
            page.screenshot(path=str(tmp_path / "task.png"), full_page=True)

            # the claim page: every registered claim, with its side-by-side table
            page.set_viewport_size({"width": 1280, "height": 800})
            page.goto((site / "index.html").as_uri())
            page.get_by_role("link", name="Claims on trial →").click()
            page.wait_for_load_state("load")
            assert page.locator("h1").inner_text() == "Claims on trial"
            assert page.locator("section.claim").count() == 6 and page.locator("table.claim-table").count() == 6
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280
            page.screenshot(path=str(tmp_path / "claims.png"), full_page=True)

            # the hostile task's page renders its title literally too
            page.goto((site / "index.html").as_uri())
            table.get_by_role("link", name="<script>alert(1)</script> (ds)").click()
            page.wait_for_load_state("load")
            assert page.locator("h1").inner_text() == "<script>alert(1)</script>"
        finally:
            browser.close()
    assert not errors, errors
    outside = [u for u in requests if not u.startswith("file://")]
    assert not outside, f"network requests from a self-contained page: {outside}"
    assert (tmp_path / "index.png").stat().st_size > 10_000
