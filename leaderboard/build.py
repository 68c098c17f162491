"""``dendrobench leaderboard RESULTS_DIR... --out SITE_DIR``: records in, a static site out.

Writes ``index.html`` (a row per task / dataset / data source / engine / budget), ``tasks/*.html``
(a page per task), ``leaderboard.md`` and ``leaderboard.csv``. Every number on every output comes
from one :class:`IndexRow` so the four outputs cannot disagree. The site is self-contained (inline
CSS, JS and SVG; no fonts, scripts or images fetched) so it opens from ``file://`` and can be
published as it is. Templates are Jinja2 with autoescaping on for every template: strings from
records and plugins are text, never markup, including inside the page's JSON data block.

Public entry points for the CLI: :func:`main`, :func:`format_task_row`, :func:`site_command`;
:func:`build_site` for programs and tests.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from dendrobench.errors import UserError
from dendrobench.evidence import stats
from dendrobench.evidence.convergence import link_double_budget
from dendrobench.evidence.multiplicity import adjust_families
from dendrobench.evidence.not_run import NOT_RUN_FILE, load_not_run  # noqa: F401 - part of this module's API

from . import claims_page, svg
from .cross_task import CrossTask, cross_task, headline_first, profile_series
from .forest import forest_rows
from .formatting import (  # noqa: F401 - part of this module's API  # noqa: F401 - part of this module's API
    BRACKETS,
    CI_MEANING,
    MAX_TEXT,
    NULL_ARM_WARNING,
    PLUS_MINUS,
    PM_MEANING,
    _finalize,
    clip,
    fmt_count,
    fmt_effect,
    fmt_interval,
    fmt_p,
    fmt_pct,
    fmt_ratio,
    fmt_rer,
    fmt_value,
    no_row_text,
    null_warning,
    slug,
    verdict_class,
    verdict_text,
)
from .model import (  # noqa: F401 - part of this module's API
    ALL_COLUMNS,
    COLUMNS,
    DETAILS,
    Cell,
    IndexRow,
    _arm_cell,
    _claim_rer,
    _diff_cell,
    _rer_cell,
    _signed,
    _stderr,
    claim_text,
    claims_for,
    different_dataset,
    display_label,
    grade_of,
    load_claims,
    load_records,
    make_row,
    missing_tasks,
    newest_finish,
    not_run_label,
)
from .tables import (  # noqa: F401 - part of this module's API
    _MD_ESCAPE,
    CSV_FIELDS,
    HEADLINE_COLUMNS,
    HEADLINE_END,
    HEADLINE_START,
    _csv_safe,
    _headline_slot,
    _md,
    _n,
    csv_record,
    put_headline,
    render_csv,
    render_headline,
    render_markdown,
)
from .task_page import task_context

PROG = "dendrobench leaderboard"
DEFAULT_OUT = "dendrobench-site"
HERE = Path(__file__).parent


def _profile_chart(answers: Sequence[CrossTask]) -> svg.Markup | None:
    """The headline engine's RER profile against the baseline and against the wide control."""
    if not answers:
        return None
    engine = answers[0].engine
    series = []
    for a in answers:
        if a.engine != engine:
            continue
        pts = profile_series(a)
        series.append(svg.Series(arm="baseline" if a.result.reference == "baseline" else "wide",
                                 label=f"dendrites ({engine}) vs {a.result.reference}",
                                 points=[(x, v) for x, v, _, _ in pts], mean=True,
                                 band=[(x, lo, hi) for x, _, lo, hi in pts]))
    return svg.line_chart(f"RER profile across tasks: fraction of seed pairs with RER above the threshold "
                          f"(engine {engine})", "RER threshold (%)", "fraction of seed pairs", series)


# -- the site ---------------------------------------------------------------------------------
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             finalize=_finalize)
    env.globals["different_dataset"] = different_dataset
    env.globals["css"] = jinja2.utils.markupsafe.Markup((HERE / "static" / "style.css").read_text(encoding="utf-8"))
    # JS is trusted package data; it is inlined verbatim, data goes through |tojson in a JSON block
    env.globals["sort_js"] = jinja2.utils.markupsafe.Markup((HERE / "static" / "table.js").read_text(encoding="utf-8"))
    return env


@dataclass
class BuildResult:
    """What a build wrote and what it skipped (for the CLI's summary and for tests)."""

    out: Path
    index: Path
    pages: dict[str, Path]
    markdown: Path
    csv: Path
    rows: list[IndexRow]
    problems: list[tuple[Path, str]]
    claims: Path | None = None
    headline: Path | None = None


MANIFEST = ".dendrobench-site.json"
_LEGACY_SITE = {"index.html", "leaderboard.md", "leaderboard.csv", "tasks"}


def previous_build(out: Path, force: bool = False) -> list[str]:
    """The files a previous build wrote into ``out`` (from its manifest), checked before writing.

    A build replaces only what a build wrote: ``out`` must be new, empty, a previous site (its
    manifest lists what may be replaced), or a site from before manifests existed (nothing in it is
    deleted). Any other non-empty folder is refused unless ``force`` (then files are written beside
    what is there, and nothing is deleted). ``out`` naming a file is a :class:`UserError`.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder: give a new or empty folder for the site")
    if not out.is_dir():
        return []
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            files = [str(f) for f in data["files"]]
        except (OSError, ValueError, KeyError, TypeError):
            files = None
        if files is not None:
            return files
    entries = {p.name for p in out.iterdir()}
    legacy = entries and entries <= _LEGACY_SITE and "index.html" in entries and (
        "dendrobench leaderboard" in (out / "index.html").read_text(encoding="utf-8", errors="replace")[:4000])
    if entries and not legacy and not force:
        raise UserError(f"--out {out} is a non-empty folder that is not a dendrobench site (no {MANIFEST}); "
                        "give a new or empty folder, or add --force to write into it (nothing in it is deleted)")
    return []


def _write_manifest(out: Path, written: Sequence[Path], previous: Sequence[str]) -> None:
    """Record what this build wrote, and delete what the previous build wrote and this one did not."""
    names = sorted(p.relative_to(out).as_posix() for p in written)
    root = out.resolve()
    for name in sorted(set(previous) - set(names)):
        old = (out / name)
        try:  # only plain files inside the site that a build wrote: a manifest edited by hand cannot reach out
            if old.resolve().parent.is_relative_to(root) and old.is_file() and not old.is_symlink():
                old.unlink()
        except OSError:
            pass
    (out / MANIFEST).write_text(json.dumps({"generator": PROG, "files": names}, indent=1) + "\n", encoding="utf-8")


def build_site(results_dirs: Sequence[Path | str], out: Path | str, *,
               warn: Callable[[str], None] | None = None, claims_path: Path | None = None,
               generated: str | None = None, force: bool = False) -> BuildResult:
    """Read records, compute the statistics and write the whole site into ``out``.

    ``out`` may be new, empty or a previous site; see :func:`previous_build` for the rest.
    """
    out = Path(out)
    previous = previous_build(out, force)
    not_run = load_not_run(results_dirs)  # a malformed file is refused before anything is written
    records, problems = load_records(results_dirs, warn)
    claims = load_claims(claims_path)
    groups = stats.summarize(records)
    linked = link_double_budget(groups)  # convergence of every row; 2x-budget runs are evidence, not rows
    groups = [g for g in groups if g.row_id not in linked.evidence_rows]
    # Holm over each comparison's rows that show a verdict (under-trained rows show none), before any
    # view formats a verdict
    adjust_families([g for g in groups if not linked.by_row[g.row_id].under_trained])
    rows = [make_row(g, claims, linked.by_row.get(g.row_id)) for g in groups]
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    generated = generated or newest_finish(records)
    env = _env()
    common = {"generated": generated, "min_seeds": stats.MIN_PAIRS, "alpha": stats.ALPHA,
              "plus_minus": PLUS_MINUS, "brackets": BRACKETS,
              "pm_meaning": PM_MEANING, "ci_meaning": CI_MEANING}

    pages: dict[str, Path] = {}
    by_task: dict[str, list[IndexRow]] = {}
    for row in rows:
        by_task.setdefault(row.key.task, []).append(row)
    page_t = env.get_template("task.html.j2")
    for task, trows in by_task.items():
        path = out / trows[0].page
        path.write_text(page_t.render(**common, **task_context(task, trows)), encoding="utf-8")
        pages[task] = path

    data = [csv_record(r) for r in rows]
    index_link = lambda r: r.href  # noqa: E731
    forest_main = svg.forest("dendrites, RER per row", forest_rows([r for r in rows if not r.smoke], index_link))
    forest_all = svg.forest("dendrites, RER per row (smoke rows included)", forest_rows(rows, index_link))
    modalities = sorted({r.group.modality for r in rows})
    engines = sorted({r.key.engine for r in rows})
    answers = headline_first(cross_task(rows))
    index = out / "index.html"
    index.write_text(env.get_template("index.html.j2").render(
        answers=answers, profile=_profile_chart(answers),
        **common, rows=rows, columns=COLUMNS, details=DETAILS, data=data, modalities=modalities, engines=engines,
        forest_main=forest_main, forest_all=forest_all, n_smoke=sum(r.smoke for r in rows),
        sources=sorted({r.key.data_source for r in rows}),
        problems=[(str(p), why) for p, why in problems], claims=claims_page.claims_shown(claims, rows, not_run),
        n_records=len(records),
        not_run={not_run_label(k): why for k, why in missing_tasks(rows, not_run).items()},
        results_dirs=[str(d) for d in results_dirs]), encoding="utf-8")
    forest_file = out / "forest.svg"  # the index's forest plot on its own, for the README
    forest_file.write_text(svg.standalone(forest_main, env.globals["css"]), encoding="utf-8")
    headline = out / "headline.md"
    headline.write_text(render_headline(rows, records, not_run, claims, answers), encoding="utf-8")
    md = out / "leaderboard.md"
    md.write_text(render_markdown(rows, len(problems), generated, not_run), encoding="utf-8")
    csv_path = out / "leaderboard.csv"
    csv_path.write_text(render_csv(rows), encoding="utf-8")
    claims_path_out = out / "claims.html"
    claims_path_out.write_text(env.get_template("claims.html.j2").render(
        **common, claims=claims_page.claim_context(rows, not_run=not_run) if claims_page.has_claim_runs(rows, not_run) else []),
        encoding="utf-8")
    _write_manifest(out, [index, md, csv_path, claims_path_out, forest_file, headline, *pages.values()], previous)
    return BuildResult(out, index, pages, md, csv_path, rows, problems, claims_path_out, headline)


# -- for the CLI ------------------------------------------------------------------------------
def site_command(results_dirs: Sequence[Path | str], out: Path | str = DEFAULT_OUT) -> str:
    """The shell command that builds the site from these results (printed at the end of a run)."""
    return " ".join(["dendrobench", "leaderboard", *(shlex.quote(str(d)) for d in results_dirs),
                     "--out", shlex.quote(str(out))])


def format_task_row(records: Sequence[dict[str, Any]], task: str) -> str:
    """The task's leaderboard row(s) as plain text for the terminal, one block per group."""
    recs = [r for r in records if r.get("task") == task]
    if not recs:
        return f"{task}: no runs recorded"
    if not any(stats.usable(r) for r in recs):  # a row of dashes would hide why: say it
        return no_row_text(task, recs)
    claims = claims_for(task, load_claims())
    lines = []
    groups = stats.summarize(recs)
    datasets = {g.key.dataset for g in groups}
    for g in groups:
        k = g.key
        lines.append(f"leaderboard row: {k.task} ({k.dataset or '?'}, {k.data_source}, engine {k.engine}, "
                     f"budget {k.budget}, metric {g.metric})" + (f" [{k.protocol}]" if k.protocol != "matched" else ""))
        for arm, ref in stats.COMPARISONS:
            c = g.comparisons.get((arm, ref))
            if c is None:
                continue
            lines.append(f"  {arm} vs {ref}: RER {fmt_rer(c.rer)}, {fmt_effect(c, g.metric)}, "
                         f"P(improve) {fmt_pct(c.p_improvement, False)}, {c.pairs} pair(s), "
                         f"p = {fmt_p(c.p_value)} -> {verdict_text(c)}"
                         + (f"; {c.null_message}" if c.null_message else "")
                         + (f"; {c.unpaired} unpaired" if c.unpaired else "")
                         + (f"; {c.undefined} with zero reference error" if c.undefined else ""))
        cb = g.comparison("dendrites", "baseline")
        if cb.cost_ratios:
            lines.append("  cost dendrites/baseline: " + ", ".join(
                f"{name} {fmt_ratio(cb.cost_ratios.get(key))}" for name, key in
                (("params", "params"), ("FLOPs", "flops_per_sample"), ("time", "wall_s"), ("steps", "steps"))))
        if g.failures:
            lines.append("  failed/diverged: " + ", ".join(
                f"{a} {s.failed + s.diverged}" for a, s in g.arms.items() if s.failed + s.diverged))
    for c in claims:
        if c.get("kind") == "claim":
            lines.append(f"  published: {claim_text(c, next(iter(datasets)) if len(datasets) == 1 else None)}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Build the static leaderboard site (HTML, Markdown, CSV) from run records.")
    p.add_argument("results_dirs", nargs="+", metavar="RESULTS_DIR", help="folders of run records (searched recursively)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="SITE_DIR", help=f"output folder (default: ./{DEFAULT_OUT})")
    p.add_argument("--claims", type=Path, default=None, help="another reference.yaml of published claims")
    p.add_argument("--readme", type=Path, default=None, metavar="FILE",
                   help=f"also put the headline table into FILE, between {HEADLINE_START} and {HEADLINE_END}")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that is not a previous site (nothing in it is deleted)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``dendrobench leaderboard RESULTS_DIR... --out SITE_DIR``; 0 on success, 2 on a user error."""
    args = _parser().parse_args(argv)
    try:
        if args.readme is not None:
            _headline_slot(args.readme)  # bad input is refused before any work
        res = build_site(args.results_dirs, args.out, claims_path=args.claims, force=args.force)
        if args.readme is not None:
            put_headline(args.readme, res.headline.read_text(encoding="utf-8"))
    except UserError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"{PROG}: error: cannot write the site: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except yaml.YAMLError as exc:
        print(f"{PROG}: error: claims file is not valid YAML: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    for r in res.rows:  # one line a row: what it says and whether its baseline had converged
        if not r.smoke:
            claim = (f" · {r.key.protocol} protocol of {r.key.claim}" if r.key.claim
                     else f" · {r.key.protocol} protocol" if r.key.protocol != "matched" else "")
            print(f"  {r.title} · {r.key.engine} · {r.key.budget}{claim}: "
                  f"{r.cells['verdict'].text} [convergence: {r.cells['convergence'].text}]")
    n = sum(len(r.group.records) for r in res.rows)
    print(f"leaderboard: {len(res.rows)} row(s) from {n} run(s), {len(res.pages)} task page(s)"
          + (f", {len(res.problems)} file(s) skipped" if res.problems else ""))
    print(f"  {res.index.resolve().as_uri()}")
    print(f"  {res.markdown}\n  {res.csv}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
