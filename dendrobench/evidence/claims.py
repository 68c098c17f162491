"""Published claims as runnable protocols (issue 10).

Each claim is data: one YAML file in ``baselines/claims/`` (shipped in the wheel as
``dendrobench.baselines``) saying who claimed what, how the figure was computed, and the protocol
that produced it -- task, data, task options, budgets, dendrite switch settings -- plus what this
machine would need to run it (``needs: [gpu, data]``).

``dendrobench claim=ID`` runs, for every seed, three protocols, each an ordinary :class:`Suite`
whose records carry ``protocol`` and ``claim``:

1. ``published``: the claim as it was run. The baseline trains for the claim's epochs; the dendritic
   arm uses perforatedai's own switching and stopping (the tracker decides, with the claim's switch
   settings, capped at ``budget.epochs``) -- or, without perforatedai installed, ``gd`` with the same
   switch schedule, recorded as such (``engine: gd``). Model selection and the reported split are the
   claim's. The budgets are unequal on purpose; each record's ``cost.steps`` says how unequal.
2. ``matched`` steps: baseline and dendrites on the same base model, the same step budget and the same
   rule (select on validation, report test).
3. ``matched`` parameters: the ``wide`` arm of the same suite, widened to the dendritic model's size.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from dendrobench.errors import ConfigError, UserError, unknown_choice

NEEDS = ("gpu", "data")
REPORT_SPLITS = ("val", "test")


def claims_dir() -> Path:
    """``baselines/claims`` of the installed distribution (``dendrobench.baselines`` in a wheel)."""
    import dendrobench.baselines

    return Path(dendrobench.baselines.__file__).parent / "claims"


@dataclass
class ArmPlan:
    """How one published arm runs: its task options, budget (overrides of the task's ``standard``
    budget) and, for the dendritic arm, the engine and its parameters."""

    options: dict[str, Any] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    engine: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fallback: dict[str, Any] | None = None  # {engine, params} when ``engine`` is not installed


@dataclass
class Claim:
    id: str
    title: str
    task: str | None
    claimed: dict[str, Any]
    source: dict[str, Any]
    needs: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    published: dict[str, Any] = field(default_factory=dict)
    matched: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    path: Path | None = None

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: Path) -> Claim:
        try:
            raw = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"claim file {path} is unreadable: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"claim file {path} is not a mapping")
        known = {f for f in cls.__dataclass_fields__ if f != "path"}
        bad = sorted(set(raw) - known)
        if bad:
            raise ConfigError(f"claim file {path}: unknown key(s) {bad}; valid keys: {', '.join(sorted(known))}")
        missing = [k for k in ("id", "title", "task", "claimed", "source") if k not in raw]
        if missing:
            raise ConfigError(f"claim file {path}: missing key(s) {missing}")
        claim = cls(**raw, path=Path(path))
        claim.check()
        return claim

    def check(self) -> None:
        """Structure only; options and budgets are validated against the task when a run starts."""
        where = f"claim {self.id}"
        if self.path is not None and self.path.stem != self.id:
            raise ConfigError(f"{where}: file name {self.path.name} must be {self.id}.yaml")
        for need in self.needs:
            if need not in NEEDS:
                raise ConfigError(f"{where}: unknown need {need!r}; valid: {', '.join(NEEDS)}")
        if self.needs:
            return  # described, not run here: the protocol is documentation
        if not self.task:
            raise ConfigError(f"{where}: a claim that runs here needs a task")
        for key in ("baseline", "dendrites"):
            if not isinstance(self.published.get(key), dict):
                raise ConfigError(f"{where}: published.{key} must be a mapping (options, budget, engine)")
        if self.published.get("report", "test") not in REPORT_SPLITS:
            raise ConfigError(f"{where}: published.report must be one of {', '.join(REPORT_SPLITS)}")
        if not self.published["dendrites"].get("engine"):
            raise ConfigError(f"{where}: published.dendrites.engine is missing")

    # -- plans ------------------------------------------------------------------------------
    def arm(self, name: str) -> ArmPlan:
        spec = dict(self.published[name])
        common = dict(self.published.get("options", {}))
        return ArmPlan(options={**common, **spec.get("options", {})}, budget=dict(spec.get("budget", {})),
                       engine=spec.get("engine"), params=dict(spec.get("params", {})), fallback=spec.get("fallback"))

    def matched_plan(self) -> ArmPlan:
        """Matched steps and parameters: the dendritic arm's base model and engine, one budget."""
        dend = self.arm("dendrites")
        spec = dict(self.matched)
        return ArmPlan(options={**dend.options, **spec.get("options", {})},
                       budget=dict(spec.get("budget", self.arm("baseline").budget)),
                       engine=spec.get("engine", dend.engine), params=dict(spec.get("params", dend.params)),
                       fallback=spec.get("fallback", dend.fallback))

    def status(self) -> str:
        if self.needs:
            return "cannot run here: needs " + ", ".join(self.needs) + (f" ({self.data['why']})" if self.data.get("why") else "")
        plan = self.arm("dendrites")
        engine, fell_back = engine_or_fallback(plan)
        how = f"dendritic arm with {engine}" + (f" (fallback: {plan.engine} is not installed)" if fell_back else "")
        files = self.data.get("files")
        return f"runnable ({how}; data.root must hold {', '.join(files)})" if files else f"runnable ({how})"


def engine_installed(engine: str) -> bool:
    """perforatedai is an optional extra; every other engine ships with dendrobench."""
    if engine == "perforatedai":
        return importlib.util.find_spec("perforatedai") is not None
    return True


def engine_or_fallback(plan: ArmPlan) -> tuple[str, bool]:
    assert plan.engine
    if engine_installed(plan.engine) or not plan.fallback:
        return plan.engine, False
    return str(plan.fallback["engine"]), True


@lru_cache(maxsize=1)
def load_claims() -> dict[str, Claim]:
    out = {}
    for path in sorted(claims_dir().glob("*.yaml")):
        claim = Claim.from_file(path)
        out[claim.id] = claim
    return out


def claim_ids() -> list[str]:
    return sorted(load_claims())


def get_claim(claim_id: str) -> Claim:
    claims = load_claims()
    if claim_id not in claims:
        raise unknown_choice("claim", claim_id, sorted(claims))
    return claims[claim_id]


# -- running ------------------------------------------------------------------------------------
SMOKE_FIELDS = ("epochs", "steps_per_epoch", "max_train_examples", "max_eval_examples")
# budget=smoke / budget=quick with a claim: its protocols cut to the task's smoke / quick scale (epochs
# capped, the task's steps per epoch and subsets), recorded under that budget name, never the claim's
# own result. Any other budget= value runs the claim's own budgets (recorded as "standard").
SCALED_BUDGETS = ("smoke", "quick")


def scaled(budget: dict[str, Any], smoke: Any | None) -> dict[str, Any]:
    """A claim's budget cut to a task budget's scale (``budget=smoke``: a check that the protocol
    runs end to end; ``budget=quick``: a reduced-scale trial), recorded under that budget's name."""
    if smoke is None:
        return dict(budget)
    out = dict(budget)
    out["epochs"] = min(int(out.get("epochs", smoke.epochs)), smoke.epochs)
    for name in SMOKE_FIELDS[1:]:
        out[name] = getattr(smoke, name)
    if smoke.epochs <= 3:  # a pipeline check: patience that could never trigger is cut to one epoch
        for name in ("early_stopping", "plateau_patience", "step_size"):
            if out.get(name) is not None:
                out[name] = 1
    return out


def suite_configs(claim: Claim, base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The run configs of a claim: (label, Hydra-style mapping) per suite, in the order they run."""
    from dendrobench.contract.registry import get_task

    smoke = None
    budget_name = "standard"
    if base.get("budget") in SCALED_BUDGETS:
        budget_name = str(base["budget"])
        smoke = get_task(str(claim.task)).budget(budget_name)
    common = {k: v for k, v in base.items() if k not in ("task", "budget", "budget_overrides", "arms", "dendrites",
                                                          "task_options", "claim")}
    # the claim's data (the real dataset); data.root says where its files are
    common["data"] = {"source": claim.data.get("source", "online"), "root": (base.get("data") or {}).get("root")}
    report = claim.published.get("report", "test")

    def cfg(plan: ArmPlan, arms: list[str], protocol: str, report_split: str) -> dict[str, Any]:
        engine = "none"
        params: dict[str, Any] = {}
        if plan.engine and any(a != "baseline" for a in arms):
            engine, fell_back = engine_or_fallback(plan)
            params = dict(plan.fallback.get("params", {})) if fell_back and plan.fallback else dict(plan.params)
        return {**common, "task": claim.task, "claim": claim.id, "protocol": protocol, "report_split": report_split,
                "budget": budget_name, "budget_overrides": scaled(plan.budget, smoke), "arms": arms,
                "task_options": dict(plan.options),
                "dendrites": {"engine": engine, **params}}

    base_plan, dend_plan, matched = claim.arm("baseline"), claim.arm("dendrites"), claim.matched_plan()
    return [
        ("published baseline", cfg(base_plan, ["baseline"], "published", report)),
        ("published dendrites", cfg(dend_plan, ["dendrites"], "published", report)),
        ("matched steps + parameters", cfg(matched, ["baseline", "dendrites", "wide"], "matched", "test")),
    ]


def run_claim(base: dict[str, Any], echo: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run a claim's protocols for every seed (seed-major, so an interrupted run has whole seeds)."""
    from dendrobench.running.config import from_mapping
    from dendrobench.running.runner import Suite

    claim = get_claim(str(base["claim"]))
    check_runnable(claim)
    if base.get("task") and base["task"] != claim.task:
        raise ConfigError(f"claim={claim.id} decides the task ({claim.task}); leave task= out")
    for key in ("task_options", "budget_overrides"):
        if base.get(key):
            raise ConfigError(f"claim={claim.id} decides {key}; leave {key}.* out (budget=smoke scales it down)")
    suites = []
    for label, cfg in suite_configs(claim, base):
        run = from_mapping(cfg)  # every option and budget validated before any training
        suites.append((label, Suite(run, echo=echo)))
    seeds = suites[0][1].run.seed_list
    echo(f"claim {claim.id}: {claim.title}")
    for label, suite in suites:
        echo(f"  {label}: engine={suite.run.engine} arms={','.join(suite.arms)} "
             f"budget {budget_line(suite.budget)}")
    records: list[dict[str, Any]] = []
    base_cfg = suite_configs(claim, base)[0][1]
    for seed in seeds:
        mine = []
        for _label, suite in suites:
            mine.extend(suite.run_seed(seed))
        records.extend(mine)
        extra = more_training_run(base_cfg, mine, seed, echo)
        if extra is not None:
            records.append(extra)
    more = claim_summary(claim, records)["more_training"]
    if more["n"]:
        echo(f"published dendrites vs base_more_training (the baseline with the dendritic arm's steps): "
             f"RER {_cell(more)}")
    return records


def more_training_run(base_cfg: dict[str, Any], records: list[dict[str, Any]], seed: int,
                      echo: Callable[[str], None] = print) -> dict[str, Any] | None:
    """``base_more_training`` (issue 21): where the published protocol gave the dendritic arm more
    optimizer steps than the baseline, the published baseline again with the dendritic run's
    epochs, so that "dendrites" is not "more training" in disguise. None where it got no more.

    The dendritic run's epochs are known only once it ran (the tracker ends it), so this arm's
    budget is set per seed from that record."""
    from dendrobench.running.config import from_mapping
    from dendrobench.running.runner import Suite

    def ok(arm: str) -> dict[str, Any] | None:
        got = [r for r in records if r.get("protocol") == "published" and r["arm"] == arm and r["status"] == "ok"]
        return got[0] if got else None

    dend, baseline = ok("dendrites"), ok("baseline")
    if dend is None or baseline is None or dend["cost"]["steps"] <= baseline["cost"]["steps"]:
        return None
    cfg = {**base_cfg, "arms": ["base_more_training"], "seed": seed, "seeds": 1,
           "budget_overrides": {**base_cfg["budget_overrides"], "epochs": int(dend["cost"]["epochs"])}}
    suite = Suite(from_mapping(cfg), echo=echo)
    echo(f"seed {seed}: the published dendritic arm took {dend['cost']['steps']} steps, the baseline "
         f"{baseline['cost']['steps']}: base_more_training runs the baseline for {dend['cost']['epochs']} epochs")
    return suite.run_seed(seed)[0]


def check_runnable(claim: Claim) -> None:
    if claim.needs:
        raise UserError(f"claim {claim.id} cannot run here: {claim.status().removeprefix('cannot run here: ')}")


def budget_line(b: Any) -> str:
    parts = [f"{b.epochs} epochs" + (" max" if b.until_engine_complete or b.early_stopping else ""),
             f"batch {b.batch_size}", f"lr {b.lr:g} {b.schedule}"]
    if b.schedule == "reduce_on_plateau":
        parts.append(f"(patience {b.plateau_patience}, factor {b.plateau_factor:g})")
    if b.early_stopping:
        parts.append(f"early stopping {b.early_stopping}")
    if b.until_engine_complete:
        parts.append("until the engine is done")
    return ", ".join(parts)


def list_lines() -> list[str]:
    out = ["claims (dendrobench claim=ID [seeds=N] [data.root=DIR]):"]
    for claim in load_claims().values():
        out.append(f"  {claim.id:<26} {claim.title}")
        out.append(f"  {'':<26}   claimed: {claim.claimed.get('statement', '')}")
        out.append(f"  {'':<26}   status: {claim.status()}")
    return out


# -- the claim table ----------------------------------------------------------------------------
def _errors_by_seed(records: list[dict[str, Any]], protocol: str, arm: str) -> dict[int, float]:
    return {r["seed"]: float(r["error"]) for r in records
            if r.get("protocol") == protocol and r["arm"] == arm and r["status"] == "ok" and r.get("error") is not None}


def claim_summary(claim: Claim, records: list[dict[str, Any]]) -> dict[str, Any]:
    """The claim's figure beside what its records give: per protocol the RER of the mean errors
    over seed pairs (estimate, 95 % interval of the inverted paired test, n), for the published protocol also how often one seed alone reaches
    the claimed figure, the steps ratio, and the RER against the dendritic run's own first phase
    (the baseline some claims used)."""
    from dendrobench.contract.metrics import get_evaluator
    from dendrobench.evidence.stats import (
        ALPHA,
        null_reason,
        rer,
        rer_test_interval,
        scale_settings,
        sign_flip_pvalue,
        t_interval,
        tie_tolerance_of,
        untied,
    )

    records = [r for r in records if r.get("claim") == claim.id]
    # one set of settings only, never pooled: a smoke check, another task version or other data
    # beside the real run would otherwise mix into its figures; the largest set is summarised
    sets: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        sets.setdefault(tuple(scale_settings(r).items()), []).append(r)
    records = max(sets.values(), key=len) if sets else []
    left_out = sum(len(v) for v in sets.values()) - len(records)

    first = next((r for r in records if r.get("metric")), None)
    tolerance = tie_tolerance_of(first, str((first or {}).get("metric", {}).get("name", "")))

    def paired(protocol: str, arm: str, ref: str) -> dict[str, Any]:
        """The leaderboard's headline estimand (issue 24): the RER of the mean errors over the
        seed pairs, ties zeroed, with the paired test inverted as its interval; ``values`` are
        the per-pair RERs (how often one seed alone reaches the claim)."""
        a, b = _errors_by_seed(records, protocol, arm), _errors_by_seed(records, protocol, ref)
        seeds = sorted(set(a) & set(b))
        values = [v for v in (rer(b[s], a[s]) for s in seeds) if v is not None]
        ref_err = [b[s] for s in seeds]
        point, low, high = rer_test_interval(ref_err, untied([b[s] - a[s] for s in seeds], tolerance),
                                             sign_flip_pvalue, ALPHA)
        null = {r["seed"] for r in records if r.get("protocol") == protocol and r["arm"] == arm and null_reason(r)}
        return {"mean": point, "low": low, "high": high, "n": len(seeds) if point is not None else 0,
                "values": values, "null_pairs": len(null & set(seeds))}

    out: dict[str, Any] = {"claimed": claim.claimed.get("value"), "quantity": claim.claimed.get("quantity"),
                           "published": paired("published", "dendrites", "baseline"),
                           "matched_steps": paired("matched", "dendrites", "baseline"),
                           "matched_params": paired("matched", "dendrites", "wide"),
                           # the published dendritic arm against the baseline given its extra steps
                           "more_training": paired("published", "dendrites", "base_more_training"),
                           "left_out": left_out}
    claimed = out["claimed"]
    pub = out["published"]
    pub["reproduced"] = sum(v >= claimed for v in pub["values"]) if claimed is not None else None
    steps = {(r["arm"], r["seed"]): r["cost"]["steps"] for r in records
             if r.get("protocol") == "published" and r["status"] == "ok"}
    ratios = [steps[("dendrites", s)] / steps[("baseline", s)] for (a, s) in steps
              if a == "dendrites" and ("baseline", s) in steps and steps[("baseline", s)]]
    pub["steps_ratio"] = t_interval(ratios).mean if ratios else None
    own = []
    for r in records:
        first = r.get("extra", {}).get("before_first_cycle")
        if r.get("protocol") == "published" and r["arm"] == "dendrites" and r["status"] == "ok" and first:
            ev = get_evaluator(r["metric"]["name"])
            split_err = ev.error(r["val"][r["metric"]["name"]])
            base_err = ev.error(first["val"][r["metric"]["name"]])
            value = rer(base_err, split_err)
            if value is not None:
                own.append(value)
    iv = t_interval(own)
    out["own_first_phase"] = {"mean": iv.mean, "low": iv.low, "high": iv.high, "n": iv.n}
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f} %"


def _cell(d: dict[str, Any]) -> str:
    if not d.get("n"):
        return "not run"
    n, null = d["n"], d.get("null_pairs", 0)
    flag = f"; null arm: {n - null} of {n} selected models had dendrites" if 2 * null > n else ""
    if d.get("low") is None:
        return f"{_pct(d['mean'])} (n={n}){flag}"
    return f"{_pct(d['mean'])} [{_pct(d['low'])}, {_pct(d['high'])}] (n={n}){flag}"


def claim_table(records: list[dict[str, Any]], not_run: dict[str, str] | None = None) -> str:
    """Markdown: claimed | as published over N seeds | matched steps | matched parameters. A claim
    without records says why when ``not_run`` (claim id -> reason, from ``not-run.yaml``) does."""
    lines = ["| claim | claimed | as published (RER, 95 % CI) | seeds reaching the claim | dendritic / baseline steps "
             "| matched steps (RER vs baseline) | matched parameters (RER vs wide) |",
             "|---|---|---|---|---|---|---|"]
    for claim in load_claims().values():
        if claim.needs:
            lines.append(f"| {claim.id} | {_pct(claim.claimed.get('value'))} | cannot run here: needs "
                         f"{', '.join(claim.needs)} | | | | |")
            continue
        s = claim_summary(claim, records)
        pub = s["published"]
        why = (not_run or {}).get(claim.id)
        if why and not any(s[k]["n"] for k in ("published", "matched_steps", "matched_params")):
            lines.append(f"| {claim.id} | {_pct(s['claimed'])} | not run: {why} | | | | |")
            continue
        reached = f"{pub['reproduced']} of {pub['n']}" if pub["n"] else "-"
        ratio = f"{pub['steps_ratio']:.2f}" if pub.get("steps_ratio") else "-"
        other = f"; {s['left_out']} records of other settings not pooled" if s["left_out"] else ""
        lines.append(f"| {claim.id} | {_pct(s['claimed'])} | {_cell(pub)}{other} | {reached} | {ratio} | "
                     f"{_cell(s['matched_steps'])} | {_cell(s['matched_params'])} |")
    return "\n".join(lines)


def table_main(argv: list[str]) -> int:
    """``dendrobench claim-table RESULTS_DIR...``: the claim table in Markdown."""
    import argparse

    from dendrobench.running.results import iter_records

    parser = argparse.ArgumentParser(prog="dendrobench claim-table", description=table_main.__doc__)
    parser.add_argument("results", nargs="+", type=Path)
    args = parser.parse_args(argv)
    records: list[dict[str, Any]] = []
    for folder in args.results:
        if not folder.is_dir():
            raise ConfigError(f"{folder} is not a folder of records")
        records.extend(iter_records(folder))
    from dendrobench.evidence.not_run import load_not_run

    print(claim_table(records, load_not_run(args.results)))
    return 0
