"""The leaderboard the repository publishes is exactly what its shipped records build.

``leaderboard/published/site`` is committed next to the records it was built from
(``leaderboard/published/records``); rebuilding must give the same bytes, file for file, so a
reader can trust that every figure on the page comes from a record in the repository.
Regenerate both with the commands in docs/results.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from dendrobench.leaderboard.build import MANIFEST, build_site

from dendrobench.running import results

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "leaderboard" / "published"


def test_shipped_site_is_what_the_shipped_records_build(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # the site was built from the repository root, with relative paths
    shipped = PUBLISHED / "site"
    names = json.loads((shipped / MANIFEST).read_text(encoding="utf-8"))["files"]
    assert {"index.html", "claims.html", "leaderboard.md", "leaderboard.csv"} <= set(names)
    rebuilt = build_site([Path("leaderboard/published/records")], tmp_path / "site", warn=lambda m: None)
    assert not rebuilt.problems, rebuilt.problems
    again = json.loads((tmp_path / "site" / MANIFEST).read_text(encoding="utf-8"))["files"]
    assert again == names
    for name in names:
        assert (tmp_path / "site" / name).read_bytes() == (shipped / name).read_bytes(), (
            f"{name} differs from a rebuild: rebuild the published site (docs/results.md)")


def test_shipped_records_keep_their_own_fields() -> None:
    """Task rows are ordinary matched runs; claim rows name their claim and protocol."""
    for folder, is_claim in (("tasks", False), ("claims", True)):
        problems: list = []
        records = list(results.iter_records(PUBLISHED / "records" / folder, problems))
        assert not problems and records, folder
        for r in records:
            for key in ("task", "arm", "seed", "status", "data_source", "dataset", "protocol", "claim"):
                assert key in r, f"{folder}: {r.get('task')} {r.get('arm')} seed {r.get('seed')} has no {key}"
            assert r["protocol"] in (("published", "matched") if is_claim else ("matched",))
            assert (r["claim"] is not None) == is_claim
            assert r["cost"]["steps"] > 0 or r["status"] != "ok"


def test_readme_headline_is_the_shipped_sites() -> None:
    """The README's table is generated (``dendrobench leaderboard ... --readme README.md``), never typed."""
    from dendrobench.leaderboard.build import HEADLINE_END, HEADLINE_START

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(HEADLINE_START, 1)[1].split(HEADLINE_END, 1)[0]
    assert block == "\n" + (PUBLISHED / "site" / "headline.md").read_text(encoding="utf-8")
    assert "leaderboard/published/site/forest.svg" in readme
