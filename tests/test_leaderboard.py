"""The leaderboard generator: outputs, bad records, escaping, and Markdown / CSV agreeing with the HTML."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import recordfactory as rf
from dendrobench.leaderboard import build
from dendrobench.leaderboard.build import (
    COLUMNS,
    build_site,
    format_task_row,
    load_claims,
    main,
    site_command,
)

from dendrobench.errors import UserError
from dendrobench.evidence import stats

EVIL = "<script>alert(1)</script>"


def _results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    # 6 seeds: the fewest with which the sign-flip test can reach p < 0.05
    rf.write(results, rf.paired("bbbp", {"baseline": [.30, .32, .28, .31, .29, .30],
                                         "dendrites": [.20, .22, .19, .21, .20, .21],
                                         "wide": [.25, .30, .27, .26, .28, .27],
                                         "compressed": [.31, .30, .30, .33, .29, .31]}))
    rf.write(results, rf.paired("wikitext2", {"baseline": [120.0, 118.0, 121.0], "dendrites": [119.0, 121.0, 118.5]},
                                modality="text"))
    return results


class _Table(HTMLParser):
    """The index table's header ids and, per row, each cell's text and data-sort: the main row's cells
    first, then the fold-out details (``<dd data-col=...>``) in their order."""

    def __init__(self) -> None:
        super().__init__()
        self.cols: list[str] = []
        self.rows: list[list[tuple[str, str | None]]] = []
        self._in_table = self._in_cell = False
        self._text = ""
        self._sort: str | None = None
        self._end = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "leaderboard":
            self._in_table = True
        if not self._in_table:
            return
        if tag == "th" and a.get("data-col") != "more":
            self.cols.append(a.get("data-col") or "")
        elif tag == "tr" and "data-engine" in a:
            self.rows.append([])
        elif (tag == "td" and "data-sort" in a) or (tag == "dd" and "data-col" in a):
            self._in_cell, self._text, self._sort, self._end = True, "", a.get("data-sort"), tag

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        if tag == self._end and self._in_cell:
            self.rows[-1].append((" ".join(self._text.split()), self._sort))
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self._text += data


def _index_table(path: Path) -> _Table:
    t = _Table()
    t.feed(path.read_text())
    return t


def test_site_outputs(tmp_path: Path) -> None:
    res = build_site([_results(tmp_path)], tmp_path / "site", generated="2026-01-01")
    for p in (res.index, res.markdown, res.csv, *res.pages.values()):
        assert p.exists() and p.stat().st_size > 0
    assert set(res.pages) == {"bbbp", "wikitext2"}
    index = res.index.read_text()
    for word in ("How to read this", "Method", "RER vs wide", "P(improve)", "params ×", "47 % reduction"):
        assert word in index
    assert 'data-filter="modality"' in index and 'data-filter="engine"' in index
    page = res.pages["bbbp"].read_text()
    assert "<svg" in page and 'class="cycle"' in page  # learning curves with dendrite cycles
    assert "test error vs inference parameters" in page and "forward FLOPs per sample" in page
    assert "abc123" in page and "config hashes" in page  # provenance
    assert "GIN without pre-training" in page  # published reference beside the measurement
    # self-contained: no URL is loaded by the page (links in text are not loaded)
    for text in [index, page]:
        assert not re.search(r'(src|href)="(https?:)?//', text)
        assert "@import" not in text and "url(" not in text


def test_markdown_and_csv_agree_with_html(tmp_path: Path) -> None:
    res = build_site([_results(tmp_path)], tmp_path / "site", generated="2026-01-01")
    table = _index_table(res.index)
    assert table.cols == [c for c, _, _ in COLUMNS]
    md_rows = [line for line in res.markdown.read_text().splitlines() if line.startswith("| ")][1:]
    csv_rows = list(csv.DictReader(res.csv.open()))
    assert len(table.rows) == len(md_rows) == len(csv_rows) == 2
    for html_row, md_row, csv_row in zip(table.rows, md_rows, csv_rows):
        md_cells = [html.unescape(re.sub(r"\\([\\\[\]|])", r"\1", c.strip())) for c in md_row.strip("|").split(" | ")]
        assert len(html_row) == len(md_cells) == len(build.ALL_COLUMNS)
        # the task cell adds the grade pill and a line of settings under the name
        assert html_row[0][0].startswith(md_cells[0])
        assert [text for text, _ in html_row[1:]] == md_cells[1:]
        cells = dict(zip([c for c, _, _ in build.ALL_COLUMNS], html_row))
        assert cells["task"][0].startswith(csv_row["task"])
        # every number the HTML sorts by is the CSV's number
        for col, field in (("rer", "rer_mean"), ("p_improve", "p_improvement"), ("params", "params_ratio"),
                           ("time", "time_ratio"), ("baseline", "baseline_mean"), ("dendrites", "dendrites_mean")):
            assert float(cells[col][1]) == pytest.approx(float(csv_row[field]), abs=1e-6), col
        # and the text shown is the CSV's number formatted
        assert cells["rer"][0].startswith(f"{float(csv_row['rer_mean']) * 100:+.1f} %")
        if int(csv_row["rer_pairs"]) >= stats.MIN_PAIRS:
            assert f"[{float(csv_row['rer_low']) * 100:+.1f}, {float(csv_row['rer_high']) * 100:+.1f}]" in cells["rer"][0]
        else:  # fewer pairs than the test needs to reject anything: the inverted test bounds nothing
            assert csv_row["rer_low"] == csv_row["rer_high"] == "" and "[" not in cells["rer"][0]
        assert cells["seeds"][0] == csv_row["rer_pairs"]
    bbbp = next(r for r in csv_rows if r["task"] == "bbbp")
    assert bbbp["verdict"] == "better" and bbbp["significant"] == "True"
    data = json.loads(re.search(r'id="leaderboard-data">(.*?)</script>', res.index.read_text(), re.S).group(1))
    assert [d["rer_mean"] for d in data] == [pytest.approx(float(r["rer_mean"])) for r in csv_rows]


def test_bad_records_are_skipped_with_a_reason(tmp_path: Path) -> None:
    results = _results(tmp_path)
    good = json.loads(next(results.glob("bbbp__baseline__seed0__*.json")).read_text())
    (results / "truncated.json").write_text(json.dumps(good)[:200])
    (results / "corrupt.json").write_bytes(b"\x00\xff not json")
    (results / "list.json").write_text("[1, 2]")
    (results / "v2.json").write_text(json.dumps({**good, "schema_version": 2}))
    (results / "nokeys.json").write_text(json.dumps({k: v for k, v in good.items() if k not in ("error", "cost")}))
    (results / "badarm.json").write_text(json.dumps({**good, "arm": "giant"}))
    warnings: list[str] = []
    res = build_site([results], tmp_path / "site", warn=warnings.append)
    why = {Path(p).name: reason for p, reason in res.problems}
    assert set(why) == {"truncated.json", "corrupt.json", "list.json", "v2.json", "nokeys.json", "badarm.json"}
    assert "truncated" in why["truncated.json"] and "schema_version 2" in why["v2.json"]
    assert "missing keys: error, cost" in why["nokeys.json"] and "arm" in why["badarm.json"]
    assert all(any(name in w for w in warnings) for name in why)
    assert res.index.exists() and "Skipped record files (6)" in res.index.read_text()
    assert len(res.rows) == 2


def test_missing_or_empty_results_are_a_clear_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(UserError, match="not found"):
        build_site([tmp_path / "nope"], tmp_path / "site")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no usable run records"):
        build_site([tmp_path / "empty"], tmp_path / "site")
    (tmp_path / "empty" / "x.json").write_text("{")
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "site")]) == 2
    err = capsys.readouterr().err
    assert "no usable run records" in err and "x.json" in err and "Traceback" not in err


def test_main_builds_from_several_dirs(tmp_path: Path, capsys) -> None:
    a = _results(tmp_path)
    b = tmp_path / "more"
    rf.write(b, rf.paired("credit-default", {"baseline": [.3, .3, .3], "dendrites": [.3, .31, .29]},
                          modality="tabular"))
    assert main([str(a), str(b), "--out", str(tmp_path / "site")]) == 0
    out = capsys.readouterr().out
    assert "3 row(s)" in out and "file://" in out
    assert (tmp_path / "site" / "leaderboard.csv").read_text().count("\n") == 4


def test_strings_from_records_are_text_never_markup(tmp_path: Path) -> None:
    results = tmp_path / "results"
    recs = rf.paired(EVIL, {"baseline": [.3, .3, .3], "dendrites": [.2, .2, .2]}, modality=EVIL,
                     description=f"desc {EVIL} & </script><b>x</b>", engine='e"><img src=x onerror=alert(2)>',
                     extra_config={"note": "</script><script>alert(3)</script>"})
    recs.append(rf.make_record(EVIL, "wide", 0, None, status="failed", message=f"boom {EVIL}", modality=EVIL,
                               engine='e"><img src=x onerror=alert(2)>'))
    rf.write(results, recs)
    res = build_site([results], tmp_path / "site")
    for path in [res.index, *res.pages.values()]:
        text = path.read_text()
        assert "<script>alert" not in text and "<img" not in text and "<b>x</b>" not in text
        # exactly our own script elements: the JSON data block and the inline JS
        assert len(re.findall(r"<script\b", text)) == (2 if path == res.index else 1)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in res.index.read_text()
    page = res.pages[EVIL]
    assert page.parent == tmp_path / "site" / "tasks" and page.name.endswith(".html") and "<" not in page.name
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in page.read_text()  # config values shown, escaped
    md = res.markdown.read_text()
    assert "<script>" not in md and "&lt;script&gt;" in md
    rows = list(csv.DictReader(res.csv.open()))
    assert rows[0]["task"] == EVIL  # CSV keeps the data as data


def test_csv_neutralises_spreadsheet_formulas(tmp_path: Path) -> None:
    results = tmp_path / "results"
    rf.write(results, rf.paired("=HYPERLINK(1)", {"baseline": [.3], "dendrites": [.2]}))
    res = build_site([results], tmp_path / "site")
    assert next(csv.DictReader(res.csv.open()))["task"] == "'=HYPERLINK(1)"


def test_format_task_row_and_site_command() -> None:
    recs = [r.to_dict() for r in rf.paired("bbbp", {"baseline": [.2] * 3, "dendrites": [.1, .1, .12],
                                                     "wide": [.15] * 3})]
    text = format_task_row(recs, "bbbp")
    assert "dendrites vs baseline: RER +46.7 %" in text and "too few seeds for a verdict: need 6" in text
    assert "dendrites vs wide" in text and "params ×1.80" in text and "published: 47 %" in text
    assert format_task_row(recs, "other") == "other: no runs recorded"
    assert site_command([Path("my results")], "site") == "dendrobench leaderboard 'my results' --out site"


def test_reference_claims_are_complete() -> None:
    claims = load_claims()
    tasks = {c["task"] for c in claims if c["kind"] == "claim"}
    assert tasks == {"bbbp", "brain-tumour", "cifar10", "wikitext2", "credit-default"}
    for c in claims:
        assert c["source"]["title"] and c["conditions"] and c["claim"] and c["who"]
    assert all(isinstance(c["datasets"], list) for c in claims)
    by_id = {c["id"]: c for c in claims}
    # produce images are none of dendrobench's datasets: flagged beside any row
    produce = by_id["pai-hackathon-2025-produce"]
    assert all("[different dataset]" in build.claim_text(produce, d) for d in (None, "cifar10", "cifar10-jpeg"))
    # a claim made on real data is flagged beside a row on a stand-in, and only there
    for cid, own, stand_in in (("pai-hackathon-2025-brain-tumour", "msd-task01-braintumour", "mni152-gm-wm"),
                               ("pai-hackathon-2025-bbbp", "bbbp", "b3db"),
                               ("pai-hackathon-2025-credit", "uci-credit-default", "german-credit")):
        assert "[different dataset]" not in build.claim_text(by_id[cid], own)
        assert "[different dataset]" in build.claim_text(by_id[cid], stand_in)
        assert "[different dataset]" not in build.claim_text(by_id[cid])
    # an entry from before ``datasets`` keeps its flag
    assert build.different_dataset({"same_dataset": False}) and not build.different_dataset({})
    gin = next(c for c in claims if c["id"] == "hu2020-gin-bbbp")
    assert (gin["value"], gin["spread"]) == (0.658, 0.045)


def test_site_is_reproducible(tmp_path: Path) -> None:
    results = _results(tmp_path)
    a = build_site([results], tmp_path / "a", generated="x")
    b = build_site([results], tmp_path / "b", generated="x")
    assert a.index.read_text().replace(str(tmp_path / "a"), "") == b.index.read_text().replace(str(tmp_path / "b"), "")
    assert a.csv.read_text() == b.csv.read_text()


# -- issue 13 items 10, 11, 14 ----------------------------------------------------------------
def test_hostile_files_are_skipped_and_the_site_is_built(tmp_path: Path, capsys) -> None:
    import os

    results = _results(tmp_path)
    good = json.loads(next(results.glob("bbbp__baseline__seed0__*.json")).read_text())
    (results / "deep.json").write_text("[" * 1000 + "]" * 1000)
    (results / "bigint.json").write_text(json.dumps(good).replace('"seed": 0', '"seed": ' + "9" * 4400))
    (results / "p400.json").write_text(json.dumps({**good, "params": {"train": 1, "inference": 10**399}}))
    (results / "vlist.json").write_text(json.dumps({**good, "history": [{**good["history"][0], "val": [1]}]}))
    os.mkfifo(results / "x.json")
    (results / "zero.json").symlink_to("/dev/zero")
    assert main([str(results), "--out", str(tmp_path / "site")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 6 and all(line.startswith("warning: skipping ") for line in err)
    assert "Skipped record files (6)" in (tmp_path / "site" / "index.html").read_text()


def test_out_never_deletes_files_it_did_not_write(tmp_path: Path, capsys) -> None:
    results = _results(tmp_path)
    site = tmp_path / "site"
    first = build_site([results], site, generated="x")
    mine = (site / "tasks" / "mine.html")
    mine.write_text("my notes")
    # a rebuild without wikitext2 drops that page (the previous build wrote it) and keeps mine.html
    for p in results.glob("wikitext2__*.json"):
        p.unlink()
    build_site([results], site, generated="x")
    assert mine.read_text() == "my notes" and not first.pages["wikitext2"].exists()
    assert json.loads((site / build.MANIFEST).read_text())["files"] == sorted(
        ["index.html", "leaderboard.md", "leaderboard.csv", "claims.html", "forest.svg", "headline.md",
         first.pages["bbbp"].relative_to(site).as_posix()])
    # a non-empty folder that is not a site is refused (one line, exit 2) unless --force
    other = tmp_path / "docs"
    (other / "tasks").mkdir(parents=True)
    (other / "tasks" / "report.html").write_text("keep")
    assert main([str(results), "--out", str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not a dendrobench site" in err and "--force" in err
    assert not (other / "index.html").exists()
    assert main([str(results), "--out", str(other), "--force"]) == 0
    assert (other / "tasks" / "report.html").read_text() == "keep" and (other / "index.html").exists()
    # --out naming a file: one line, exit 2, the file untouched
    f = tmp_path / "file.txt"
    f.write_text("data")
    assert main([str(results), "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is a file" in err and f.read_text() == "data"


def test_markdown_neutralises_links_and_pages_clip_long_text(tmp_path: Path) -> None:
    results = tmp_path / "results"
    link = "[x](javascript:alert(1)) ![i](http://e/x.png) [r][1]"
    recs = rf.paired(link, {"baseline": [.3, .3, .3], "dendrites": [.2, .2, .2]}, modality="graph")
    huge = "y" * 3_000_000
    recs.append(rf.make_record(link, "wide", 0, None, status="failed", message=huge))
    paths = rf.write(results, recs)
    res = build_site([results], tmp_path / "site")
    md = res.markdown.read_text()
    assert "\\[x\\](javascript:alert(1))" in md and "\\!" not in md
    assert not re.search(r"(?<!\\)\[", md.split("| task |")[1].replace("\\[", "").replace("\\]", ""))
    page = res.pages[link].read_text()
    assert len(page) < 200_000 and "more characters in the record" in page
    assert json.loads(paths[-1].read_text())["message"] == huge  # the record keeps it whole


# -- issue 9 item 6: a leaderboard read at a glance ---------------------------------------------
def test_index_has_forest_plot_grades_and_folds_secondary_columns(tmp_path: Path) -> None:
    results = tmp_path / "results"
    base = [.30, .32, .28, .31, .29, .30, .33, .27, .31, .30]
    rf.write(results, rf.paired("bbbp", {"baseline": base, "dendrites": [e - .05 for e in base],
                                         "wide": [e - .02 for e in base]}, budget="standard"))
    rf.write(results, rf.paired("cifar10", {"baseline": [.1, .2], "dendrites": [.1, .1]}, budget="smoke"))
    rf.write(results, rf.paired("wikitext2", {"baseline": [120.0, 118.0, 121.0], "dendrites": [119.0, 121.0, 118.5]},
                                modality="text"))
    res = build_site([results], tmp_path / "site", generated="x")
    index = res.index.read_text()
    rows = {r.key.task: r for r in res.rows}
    assert rows["bbbp"].publishable and rows["cifar10"].smoke and rows["wikitext2"].grade == "quick"
    assert rows["cifar10"].cells["verdict"].text == "pipeline check"
    # the forest plot comes before the table; smoke rows are only in the second (toggled) plot
    assert index.index('class="chart forest"') < index.index('id="leaderboard"')
    main_plot = index[index.index('id="forest-main"'):index.index('id="forest-all"')]
    assert main_plot.count('class="forest-row') == 2 and "cifar10" not in main_plot
    assert 'class="claim-mark"' in main_plot and 'class="zero"' in main_plot  # the 47 % RER claim on bbbp
    assert 'id="show-smoke"' in index and 'class="main smoke"' in index
    assert index.count('class="pill publishable"') >= 2 and 'pipeline check</span>' in index
    # a table row has the primary columns only; the rest is in its details row
    table = _index_table(res.index)
    assert table.cols == [c for c, _, _ in COLUMNS] and len(COLUMNS) <= 8
    assert all(len(r) == len(build.ALL_COLUMNS) for r in table.rows)
    # "±" is explained on the index and in leaderboard.md
    md = res.markdown.read_text()
    for text in (index, md, res.pages["bbbp"].read_text()):
        assert "standard deviation over seeds" in html.unescape(text)
        assert "95 % Student-t confidence interval" in html.unescape(text)
    bbbp = next(r for r in csv.DictReader(res.csv.open()) if r["task"] == "bbbp")
    assert bbbp["publishable"] == "True" and float(bbbp["p_value"]) < 0.05 and float(bbbp["diff_mean"]) > 0


def test_task_page_opens_with_the_verdict_and_forest(tmp_path: Path) -> None:
    res = build_site([_results(tmp_path)], tmp_path / "site", generated="x")
    page = res.pages["bbbp"].read_text()
    order = [page.index(s) for s in ('id="verdict"', 'class="chart forest"', "validation roc_auc during training",
                                     "Per seed", 'id="claims"', 'id="provenance"')]
    assert order == sorted(order)
    assert 'class="band"' in page and 'class="armmean"' in page and 'class="errorbar"' in page
    assert "effect" in page and "p = " in page


def test_null_arm_and_sweep_labels_are_shown(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for md_, cycles in ((2, 0), (3, 2)):  # max_dendrites=2 added nothing; max_dendrites=3 did
        recs = rf.paired("bbbp", {"baseline": [.3, .3, .3], "dendrites": [.3, .29, .31]},
                         extra_config={"dendrites": {"engine": "gd", "max_dendrites": md_}})
        for r in recs:
            r.config_hash = f"{md_:04d}" + r.config_hash[4:]  # a file of its own per setting
            if r.arm == "dendrites":
                r.dendrites = {"cycles": cycles, "added": cycles * 3, "at_selected": cycles * 3, "final": cycles * 3}
        rf.write(results, recs)
    res = build_site([results], tmp_path / "site", generated="x")
    labels = sorted(r.label for r in res.rows)
    assert len(res.rows) == 2 and labels == ["dendrites.max_dendrites=2", "dendrites.max_dendrites=3"]
    null_row = next(r for r in res.rows if r.label.endswith("=2"))
    assert null_row.warning == build.NULL_ARM_WARNING
    for text in (res.index.read_text(), res.markdown.read_text(), res.pages["bbbp"].read_text()):
        assert text.count(build.NULL_ARM_WARNING) >= 1
        assert "max_dendrites=2" in text and "max_dendrites=3" in text
    other = next(r for r in res.rows if r.label.endswith("=3"))
    assert not other.warning


# -- issue 10 item 5: the claim page ----------------------------------------------------------
def _claim_records(results: Path) -> None:
    """pai-hackathon-bbbp run as published (unequal steps) and matched (steps and parameters)."""
    base = [.20, .22, .18, .21, .19, .20, .23, .17, .21, .20]
    published = rf.paired("bbbp", {"baseline": base, "dendrites": [e - .03 for e in base]}, budget="claim")
    matched = rf.paired("bbbp", {"baseline": base, "dendrites": [e - .005 for e in base],
                                 "wide": [e - .006 for e in base]}, budget="claim")
    for tag, protocol, recs in (("p", "published", published), ("m", "matched", matched)):
        for r in recs:
            r.protocol, r.claim = protocol, "pai-hackathon-bbbp"
            r.config_hash = tag + r.config_hash[1:]
            if protocol == "published" and r.arm == "dendrites":
                r.cost = {**r.cost, "steps": 180}
        rf.write(results, recs)


def test_claim_page_sets_claim_published_matched_side_by_side(tmp_path: Path) -> None:
    results = _results(tmp_path)
    _claim_records(results)
    res = build_site([results], tmp_path / "site", generated="x")
    # the two protocols never share a row; the published row says so, with its steps ratio
    claim_rows = [r for r in res.rows if r.group.claim == "pai-hackathon-bbbp"]
    assert sorted(r.group.protocol for r in claim_rows) == ["matched", "published"]
    pub = next(r for r in claim_rows if r.group.protocol == "published")
    assert "published protocol of pai-hackathon-bbbp, steps ×1.80" in pub.protocol_note
    assert "published protocol of pai-hackathon-bbbp, steps ×1.80" in res.index.read_text()
    page = html.unescape(res.claims.read_text())
    assert 'href="claims.html"' in res.index.read_text()
    ctx = {c["id"]: c for c in build.claims_page.claim_context(res.rows)}
    bbbp = ctx["pai-hackathon-bbbp"]
    cols = {c.title: c for c in bbbp["columns"]}
    assert cols["as published"].comparison.pairs == 10 and cols["matched steps"].comparison.pairs == 10
    assert cols["matched parameters"].reference == "wide"
    assert cols["as published"].rer > cols["matched steps"].rer > 0 > cols["matched parameters"].rer
    # how often a single seed reproduces the claimed 47 %: never, with these errors
    assert cols["as published"].cells["reached"] == "0 of 10"
    assert cols["as published"].cells["steps"] == "×1.80" and cols["matched steps"].cells["steps"] == "×1.00"
    assert bbbp["sentence"].startswith("Of the claimed 47.0 %, the published procedure yields +")
    assert "with equal steps +" in bbbp["sentence"] and "against equal parameters -" in bbbp["sentence"]
    assert bbbp["sentence"] in page
    # claims that cannot run here show their protocol and why not; runnable ones not run say how
    mri = ctx["pai-hackathon-mri"]
    assert not mri["runnable"] and "Cannot run here:</b> needs gpu, data" in page and "Task01_BrainTumour" in page
    assert mri["claimed_rer"] == "+15.2 %" and mri["converted"]  # a relative Dice gain of 47.3 % as an RER
    assert "Not run yet: <code>dendrobench claim=pai-hackathon-credit seeds=10" in page
    assert page.count('class="card claim"') == len(ctx) == 6


def test_claim_rer_conversion() -> None:
    from dendrobench.leaderboard.claims_page import claimed_rer

    assert claimed_rer({"metric": "roc_auc", "baseline": 0.8269, "dendritic": 0.9083}) == pytest.approx(0.4702, abs=1e-3)
    # a perplexity claim is read on the rows' axis, log-perplexity: 94.15 -> 84.14 is 10.6 % lower
    # perplexity but 2.5 % lower cross-entropy
    assert claimed_rer({"metric": "perplexity", "baseline": 94.15, "dendritic": 84.14}) == pytest.approx(0.02473, abs=1e-4)
    assert claimed_rer({"metric": "eval_loss", "baseline": 0.3986, "dendritic": 0.4816}) < 0  # a misread loss
    assert claimed_rer({"quantity": "rer", "value": 0.3}) == 0.3


def test_readme_headline_is_replaced_between_its_markers_or_refused(tmp_path: Path, capsys) -> None:
    results = _results(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# me\nno markers here\n")
    assert build.main([str(results), "--out", str(tmp_path / "site"), "--readme", str(readme)]) == 2
    assert "no <!-- dendrobench:headline -->" in capsys.readouterr().err
    assert readme.read_text() == "# me\nno markers here\n" and not (tmp_path / "site").exists()  # before any work
    readme.write_text(f"# me\n{build.HEADLINE_START}\nold table\n{build.HEADLINE_END}\nafter\n")
    assert build.main([str(results), "--out", str(tmp_path / "site"), "--readme", str(readme)]) == 0
    text = readme.read_text()
    headline = (tmp_path / "site" / "headline.md").read_text()
    assert "old table" not in text and text == f"# me\n{build.HEADLINE_START}\n{headline}{build.HEADLINE_END}\nafter\n"
    assert "| task | data | engine |" in headline


def test_a_published_protocol_pairs_its_own_different_models_but_never_another_scale(tmp_path: Path) -> None:
    """pai-hackathon-credit compares a 128-wide baseline with a 64-wide dendritic MLP, as published:
    one row; its smoke check (budget smoke) is a row of its own, never pooled with it."""
    results = tmp_path / "results"
    base = [.22, .21, .23, .22, .20, .21]
    for budget, tag in (("standard", "s"), ("smoke", "k")):
        recs = rf.paired("credit-default", {"baseline": base, "dendrites": [e - .01 for e in base]}, budget=budget)
        for r in recs:
            r.protocol, r.claim = "published", "pai-hackathon-credit"
            r.config_hash = tag + r.config_hash[1:]
            width = [128, 128, 64] if r.arm == "baseline" else [64, 64, 32]
            r.config = {**r.config, "task_options": {"hidden": width}}
            if r.arm == "dendrites":
                r.engine = "perforatedai"
        rf.write(results, recs)
    res = build_site([results], tmp_path / "site", generated="x")
    rows = {r.key.budget: r for r in res.rows if r.group.claim == "pai-hackathon-credit"}
    assert sorted(rows) == ["smoke", "standard"]
    c = rows["standard"].group.comparison("dendrites", "baseline")
    assert c.pairs == 6 and c.rer.mean > 0
    assert len(rows["standard"].group.records) == 12


def test_a_row_scored_on_validation_shows_validation_means_beside_its_rer(tmp_path: Path) -> None:
    """A claim's published protocol may report validation scores (``report_split=val``): its records'
    ``error`` is 1 - val. The row's metric columns, metric difference and CSV must then be on val too,
    or a reader sees test means beside an RER they do not give."""
    results = tmp_path / "results"
    base = [.22, .21, .23, .22, .20, .21]
    recs = rf.paired("credit-default", {"baseline": base, "dendrites": [e - .01 for e in base]}, budget="standard")
    for r in recs:
        r.protocol, r.claim = "published", "pai-hackathon-credit"
        r.config = {**r.config, "report_split": "val"}
        r.test = {"roc_auc": 0.5}  # test scores that disagree with val: a row showing them is caught
    rf.write(results, recs)
    res = build_site([results], tmp_path / "site", generated="x")
    row = next(r for r in res.rows if r.group.claim == "pai-hackathon-credit")
    assert row.group.split == "val" and row.group.arms["baseline"].split == "val"
    assert row.cells["baseline"].text == build.fmt_interval(stats.t_interval(1 - e for e in base)) + " (val)"
    assert row.group.comparison("dendrites", "baseline").diff.mean == pytest.approx(0.01)
    csv_row = next(csv.DictReader(io.StringIO((tmp_path / "site" / "leaderboard.csv").read_text())))
    assert csv_row["split"] == "val" and float(csv_row["baseline_mean"]) == pytest.approx(1 - sum(base) / 6)


def test_the_headline_says_when_and_on_what_its_records_were_made(tmp_path: Path) -> None:
    """The README headline ends with a provenance line taken from the records (count, newest finish,
    budgets, machine and software with each combination's share), so it is rebuilt byte for byte."""
    results = tmp_path / "results"
    recs = rf.paired("bbbp", {"baseline": [.2, .3], "dendrites": [.2, .3]})
    recs[0].env = {**recs[0].env, "threads": 2}
    for r in recs[1:]:
        r.env = {**r.env, "threads": 1, "device_name": "x86_64", "platform": "Linux-6.1-x86_64"}
    rf.write(results, recs)
    line = build_site([results], tmp_path / "site", generated="x").headline.read_text().splitlines()[-1]
    assert line.startswith("From 4 run records, the newest finished 2026-01-01 00:01 UTC; budgets quick; ")
    assert "x86_64 Linux, cpu only, Python 3.11.7, torch 2.3.0, 1 thread per run (3 runs)" in line
    assert "2 threads per run (1 run)" in line


def test_a_task_that_was_not_run_gets_a_row_saying_why(tmp_path: Path) -> None:
    """A published leaderboard has a row per task or says why not: ``not-run.yaml`` beside the
    records gives the reason, shown in the headline, the Markdown and the index; a task that has
    rows after all is not listed; a malformed file is refused before anything is written."""
    results = _results(tmp_path)
    (results / "not-run.yaml").write_text("brain-tumour: >-\n  no labelled volumes\n  here\nwikitext2: ran after all\n"
                                          "pai-hackathon-wikitext2: hours per arm here\n"
                                          "bbbp@converged: 20 core-hours\nbbbp@quick: ran after all\n")
    res = build_site([results], tmp_path / "site", generated="x")
    headline = res.headline.read_text()
    row = next(line for line in headline.splitlines() if line.startswith("| brain-tumour |"))
    assert "| not run | no labelled volumes here |" in row and "47.3 % baseline improvement" in row
    assert not any(line.startswith("| wikitext2 | – |") for line in headline.splitlines())
    assert "| pai-hackathon-wikitext2 | +10.6 % | not run: hours per arm here |" in headline
    assert not any(line.startswith("| pai-hackathon-wikitext2 | – |") for line in headline.splitlines())
    # a TASK@BUDGET key: a row for that budget beside the task's rows at others, until it has one
    assert "| bbbp | – | – | converged | 0 | not run | 20 core-hours |" in headline
    assert "bbbp@quick" not in headline and "ran after all" not in headline
    assert "- bbbp (converged budget): 20 core-hours" in res.markdown.read_text()
    assert "bbbp (converged budget) (20 core-hours)" in res.index.read_text()
    assert "- brain-tumour: no labelled volumes here" in res.markdown.read_text()
    assert "brain-tumour (no labelled volumes here)" in res.index.read_text()
    assert "<b>Not run:</b> hours per arm here." in res.claims.read_text()
    (results / "not-run.yaml").write_text("- brain-tumour\n")
    out = tmp_path / "site2"
    assert main([str(results), "--out", str(out)]) == 2 and not out.exists()
