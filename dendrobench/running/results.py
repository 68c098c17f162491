"""Result records: one JSON file per run, written atomically, named by the hash of everything
that changes a result, validated against a versioned schema.

The record's keys are a public contract (DESIGN.md "Results"): tools outside the project read them.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from dendrobench.errors import UserError

SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "diverged")
PROTOCOLS = ("matched", "published", "tuned", "fork")
# Keys added after schema 1 was published, with the value an older record means by leaving them out
# (issue 10): every record written before protocols existed was an ordinary, matched-budget run.
LATER_DEFAULTS: dict[str, Any] = {"protocol": "matched", "claim": None}

# Ranges: wide enough for any real run, tight enough that every number converts to a finite float
# and sums of 10,000 of them stay finite (a 400-digit "parameter count" overflowed float() in the
# leaderboard). Counts are integers; measurements are finite numbers; NaN/inf are stored as null.
MAX_FLOAT = 1.0e300
MAX_COUNT = 10**15  # parameters, steps, FLOPs-like counts: a quadrillion is far beyond any model here
_FINITE_OR_NULL: dict[str, Any] = {"type": ["number", "null"], "minimum": -MAX_FLOAT, "maximum": MAX_FLOAT}
_NONNEG_OR_NULL: dict[str, Any] = {"type": ["number", "null"], "minimum": 0, "maximum": MAX_FLOAT}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
_COUNT_OR_NULL: dict[str, Any] = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_COUNT}
# metric name -> value (null where the value was NaN or infinite)
_METRICS: dict[str, Any] = {"type": "object", "additionalProperties": _FINITE_OR_NULL}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "dendrobench run record",
    "type": "object",
    "required": [
        "schema_version", "config_hash", "task", "dataset", "data_source", "arm", "engine", "seed",
        "budget", "status", "message", "metric", "val", "test", "error", "params", "cost", "dendrites",
        "history", "env", "config", "started", "finished",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "config_hash": {"type": "string", "minLength": 8},
        "task": {"type": "string"},
        "dataset": {"type": ["string", "null"]},
        "data_source": {"enum": ["offline", "online"]},
        "arm": {"enum": ["baseline", "dendrites", "wide", "compressed", "base_more_training"]},
        "engine": {"type": "string"},
        "seed": {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1},  # what torch.manual_seed takes
        "budget": {"type": "string"},
        "protocol": {"enum": list(PROTOCOLS)},
        "claim": {"type": ["string", "null"]},
        "status": {"enum": list(STATUSES)},
        "message": {"type": ["string", "null"]},
        "metric": {
            "type": "object", "required": ["name", "higher_is_better"],
            "properties": {"name": {"type": "string"}, "higher_is_better": {"type": "boolean"}},
        },
        "val": _METRICS,
        "test": _METRICS,
        "error": _FINITE_OR_NULL,
        "params": {
            "type": "object", "required": ["train", "inference"],
            # train / inference: the validation-selected model's; final_*: the model at the end of training
            "properties": {"train": _COUNT_OR_NULL, "inference": _COUNT_OR_NULL,
                           "final_train": _COUNT_OR_NULL, "final_inference": _COUNT_OR_NULL},
        },
        "cost": {
            "type": "object",
            "required": ["steps", "epochs", "wall_s", "flops_per_sample", "peak_mem_mb", "energy_kwh"],
            "properties": {
                "steps": _COUNT, "epochs": {"type": "number", "minimum": 0, "maximum": MAX_COUNT},
                "steps_per_epoch": _COUNT_OR_NULL, "wall_s": _NONNEG_OR_NULL,
                "flops_per_sample": _NONNEG_OR_NULL, "peak_mem_mb": _NONNEG_OR_NULL,
                "energy_kwh": _NONNEG_OR_NULL,
                # the training clock up to the selected epoch; FLOPs of the final model (issue 9)
                "wall_s_selected": _NONNEG_OR_NULL, "flops_per_sample_final": _NONNEG_OR_NULL,
            },
        },
        "dendrites": {
            "type": "object",
            "properties": {**{k: _COUNT_OR_NULL for k in ("cycles", "added", "at_selected", "final")},
                           # a dendritic arm without dendrites where it matters, and why (issue 9)
                           "null_arm": {"type": "boolean"}, "null_reason": {"type": ["string", "null"]}},
        },
        "history": {
            "type": "array",
            "items": {
                "type": "object", "required": ["epoch", "step", "train_loss", "val", "event"],
                "properties": {
                    "epoch": _COUNT, "step": _COUNT, "train_loss": _FINITE_OR_NULL, "val": _METRICS,
                    "event": {"type": ["string", "null"]},
                },
            },
        },
        "env": {"type": "object", "required": ["python", "torch", "dendrobench", "device", "git_commit"]},
        "config": {"type": "object"},
        "extra": {"type": "object"},
        "started": {"type": "string"},
        "finished": {"type": ["string", "null"]},
    },
}


@dataclass
class Record:
    config_hash: str
    task: str
    dataset: str | None
    data_source: str
    arm: str
    engine: str
    seed: int
    budget: str
    metric: dict[str, Any]
    config: dict[str, Any]
    env: dict[str, Any]
    started: str
    status: str = "ok"
    message: str | None = None
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    error: float | None = None
    params: dict[str, int | None] = field(default_factory=lambda: {"train": None, "inference": None})
    cost: dict[str, Any] = field(default_factory=lambda: {
        "steps": 0, "epochs": 0, "wall_s": 0.0, "flops_per_sample": None, "peak_mem_mb": None, "energy_kwh": None})
    dendrites: dict[str, Any] = field(default_factory=lambda: {"cycles": 0, "added": 0})
    history: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # task info (e.g. dropped molecules), selection, export
    finished: str | None = None
    # "matched": every arm under the same step budget (ordinary runs); "published": a claim's own
    # protocol, its unequal budget included (cost.steps says how unequal). ``claim``: the claim id.
    protocol: str = "matched"
    claim: str | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_hash(payload: dict[str, Any]) -> str:
    """Hash of everything that changes a result: resolved config, seed, data source, versions."""
    blob = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def record_path(results_dir: Path, task: str, arm: str, seed: int, digest: str) -> Path:
    safe_task = "".join(c if c.isalnum() or c in "-_." else "_" for c in task)
    return Path(results_dir) / f"{safe_task}__{arm}__seed{seed}__{digest[:16]}.json"


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def _finite(obj: Any) -> Any:
    """JSON has no NaN/Infinity: store them as null so every reader can parse the record."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


class RecordWriteError(UserError):
    """A record could not be written (disk full, folder gone read-only): one line, exit 2; every
    record written before is intact (each write is atomic)."""


def _tmp_tag() -> str:
    """Host and pid in a temp file's name, so a later run can tell a killed writer's leftovers."""
    return f"{socket.gethostname().split('.')[0]}-{os.getpid()}"


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (threads may be writing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[IO[str]], Any], mode: int | None = None) -> None:
    """Write through ``write(fh)`` to a temp file in the same folder, fsync, then rename: a reader
    sees the old file or the new, never half of each. The temp file is removed on any failure.

    The file gets ``mode``, else the mode a plain ``open`` would give (0666 minus the umask), not
    ``mkstemp``'s 0600, so a results folder shared by a group stays readable by it.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_tmp_tag()}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask() if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: dict[str, Any]) -> None:
    """A record, written with :func:`atomic_write`; a failure is one line naming the file."""
    try:
        atomic_write(path, lambda fh: json.dump(_finite(data), fh, indent=1, default=_json_default, allow_nan=False))
    except OSError as exc:
        raise RecordWriteError(f"cannot write {path}: {exc.strerror or exc}; records written before are kept") from None


LEGACY_TMP_AGE_S = 3600.0


def clean_stale_files(results_dir: Path) -> list[Path]:
    """Remove temp files a killed writer left in ``results_dir`` (same host, process gone)."""
    removed = []
    host = socket.gethostname().split(".")[0]
    for tmp in Path(results_dir).glob(".*.tmp"):
        tag = tmp.name[: -len(".tmp")].rsplit(".", 2)
        if len(tag) < 3:
            continue
        owner, _, pid = tag[-2].rpartition("-")
        if pid.isdigit() and owner:
            stale = owner == host and not pid_alive(int(pid))
        else:  # written before temp names carried host and pid: a write takes milliseconds, not an hour
            try:
                stale = time.time() - tmp.stat().st_mtime > LEGACY_TMP_AGE_S
            except OSError:
                stale = False
        if stale:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process of this host still runs (one owned by another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_record(path: Path, record: Record) -> None:
    data = _finite(record.to_dict())  # validated as stored: NaN/inf become null first
    validate(data)
    atomic_write_json(path, data)


class RecordError(ValueError):
    """A record that cannot be used: unreadable, truncated, wrong schema version, missing keys."""


# The nested parts of SCHEMA (metrics, params, cost, dendrites, history) hold most of a record's
# values; jsonschema walks them at ~50 us a value, four times what the whole record took before they
# were typed (a 10,000-record leaderboard went from ~10 s to ~40 s). Readers check them with
# _check_nested (the same rules, one pass in plain Python) and give jsonschema only the shallow rest;
# writers validate against the full SCHEMA. tests/test_results.py holds both to the same verdicts.
_NESTED = ("val", "test", "params", "cost", "dendrites", "history")
READ_SCHEMA: dict[str, Any] = {
    **SCHEMA,
    "properties": {**SCHEMA["properties"], **{k: {key: v for key, v in SCHEMA["properties"][k].items()
                                                   if key in ("type", "required")} for k in _NESTED}},
}


@lru_cache(maxsize=2)
def _validator(full: bool = True) -> Any:
    """The schema compiled once: ``jsonschema.validate`` re-checks the schema itself on every call,
    19 of its 20 ms per record (3 minutes for a 10,000-record leaderboard)."""
    import jsonschema

    schema = SCHEMA if full else READ_SCHEMA
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@lru_cache(maxsize=2)
def _fast_check(full: bool = True) -> Any:
    """The same schema compiled by fastjsonschema (about 20x faster than jsonschema, which dominated
    building a site from many records). It knows drafts up to 7; the schema uses no keyword that
    differs between draft 7 and 2020-12. jsonschema stays the reference that words a rejection."""
    import fastjsonschema

    return fastjsonschema.compile({**(SCHEMA if full else READ_SCHEMA), "$schema": "http://json-schema.org/draft-07/schema#"})


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and -MAX_FLOAT <= v <= MAX_FLOAT


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_COUNT


def _check_nested(data: dict[str, Any]) -> None:
    """SCHEMA's rules for the nested parts (see _NESTED), as one pass in plain Python."""
    def fail(where: str, value: Any, what: str) -> None:
        shown = repr(value)
        raise RecordError(f"invalid at {where}: {shown[:60] + '...' if len(shown) > 60 else shown} is not {what}")

    def metrics(obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            fail(where, obj, "an object of metric values")
        for k, v in obj.items():
            if v is not None and not _is_num(v):
                fail(f"{where}/{k}", v, "a finite number or null")

    metrics(data["val"], "val")
    metrics(data["test"], "test")
    for k in ("train", "inference"):
        v = data["params"][k]
        if v is not None and not _is_count(v):
            fail(f"params/{k}", v, f"an integer from 0 to {MAX_COUNT} or null")
    cost = data["cost"]
    if not _is_count(cost["steps"]):
        fail("cost/steps", cost["steps"], f"an integer from 0 to {MAX_COUNT}")
    if not (_is_num(cost["epochs"]) and 0 <= cost["epochs"] <= MAX_COUNT):
        fail("cost/epochs", cost["epochs"], f"a number from 0 to {MAX_COUNT}")
    if cost.get("steps_per_epoch") is not None and not _is_count(cost["steps_per_epoch"]):
        fail("cost/steps_per_epoch", cost["steps_per_epoch"], "an integer or null")
    for k in ("wall_s", "flops_per_sample", "peak_mem_mb", "energy_kwh"):
        v = cost[k]
        if v is not None and not (_is_num(v) and v >= 0):
            fail(f"cost/{k}", v, "a finite number >= 0 or null")
    for k in ("cycles", "added", "at_selected", "final"):
        v = data["dendrites"].get(k)
        if v is not None and not _is_count(v):
            fail(f"dendrites/{k}", v, f"an integer from 0 to {MAX_COUNT} or null")
    for i, h in enumerate(data["history"]):
        if not isinstance(h, dict):
            fail(f"history/{i}", h, "an object")
        missing = [k for k in ("epoch", "step", "train_loss", "val", "event") if k not in h]
        if missing:
            raise RecordError(f"invalid at history/{i}: missing {', '.join(missing)}")
        for k in ("epoch", "step"):
            if not _is_count(h[k]):
                fail(f"history/{i}/{k}", h[k], f"an integer from 0 to {MAX_COUNT}")
        if h["train_loss"] is not None and not _is_num(h["train_loss"]):
            fail(f"history/{i}/train_loss", h["train_loss"], "a finite number or null")
        metrics(h["val"], f"history/{i}/val")
        if h["event"] is not None and not isinstance(h["event"], str):
            fail(f"history/{i}/event", h["event"], "a string or null")


def _depth_within(obj: Any, limit: int) -> bool:
    """Whether ``obj`` nests lists/dicts at most ``limit`` deep (iterative: no recursion to overflow)."""
    stack = [(obj, 1)]
    pop, push, nested = stack.pop, stack.append, (dict, list)
    while stack:
        node, depth = pop()
        if depth > limit:
            return False
        for child in (node.values() if isinstance(node, dict) else node):
            if isinstance(child, nested):
                push((child, depth + 1))
    return True


def validate(data: Any, *, full: bool = True) -> None:
    """Raise :class:`RecordError` naming the first problem. ``full=False`` (readers) checks the same
    rules faster: jsonschema for the shallow part, :func:`_check_nested` for the nested part."""
    import jsonschema

    if not isinstance(data, dict):
        raise RecordError(f"not a JSON object but {type(data).__name__}")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RecordError(f"schema_version {version!r}, this dendrobench reads {SCHEMA_VERSION}")
    missing = [k for k in SCHEMA["required"] if k not in data]
    if missing:
        raise RecordError(f"missing keys: {', '.join(missing)}")
    if not _depth_within(data, MAX_DEPTH):
        raise RecordError(f"nested more than {MAX_DEPTH} levels deep")
    import fastjsonschema

    try:
        _fast_check(full)(data)
    except fastjsonschema.JsonSchemaException:  # rejected: jsonschema decides and says where and why
        error = jsonschema.exceptions.best_match(_validator(full).iter_errors(data))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(top)"
            raise RecordError(f"invalid at {where}: {error.message}") from None
    if not full:
        _check_nested(data)


# What a reader accepts (docs/results.md): a regular file of at most MAX_RECORD_BYTES, JSON nested at
# most MAX_DEPTH levels, integers of at most MAX_INT_DIGITS digits, no NaN/Infinity literals. Anything
# else is skipped with one line naming the file, so one hostile or broken file never stops a build.
MAX_RECORD_BYTES = 20 * 1024 * 1024
MAX_DEPTH = 64
MAX_INT_DIGITS = 300  # float() of any such integer is finite; Python refuses > 4,300 digits anyway


def _read_regular(path: Path, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; never blocks on a FIFO or reads a device.

    ``O_NONBLOCK`` makes opening a FIFO return at once; the type is checked on the open descriptor
    (not the name, which could be swapped), and at most ``limit + 1`` bytes are ever read.
    """
    limit = MAX_RECORD_BYTES if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise RecordError(f"unreadable: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RecordError("not a regular file (a FIFO, device or socket): only regular files are read")
        if st.st_size > limit:
            raise RecordError(f"{st.st_size} bytes, larger than the {limit / 2**20:g} MB a record may have")
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise RecordError(f"larger than the {limit / 2**20:g} MB a record may have")
        return b"".join(chunks)
    except OSError as exc:
        raise RecordError(f"unreadable: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise RecordError(f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_INT_DIGITS} are read)")
    return int(text)


def _parse_constant(name: str) -> float:
    raise RecordError(f"{name} is not JSON (non-finite numbers are stored as null)")


def parse_record(raw: bytes) -> dict[str, Any]:
    """Bytes to a validated record, or :class:`RecordError` saying in one line what was wrong."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"not valid JSON (corrupt: not UTF-8 text at byte {exc.start})") from None
    try:
        data = json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON (truncated or corrupt): {exc.msg} at line {exc.lineno}") from None
    except RecordError:
        raise
    except RecursionError:
        raise RecordError(f"JSON nested too deeply (at most {MAX_DEPTH} levels are read)") from None
    except ValueError as exc:  # e.g. Python's own integer-length limit
        raise RecordError(f"not usable JSON: {str(exc).splitlines()[0]}") from None
    validate(data, full=False)
    for key, default in LATER_DEFAULTS.items():
        data.setdefault(key, default)
    return data


def read_record(path: Path) -> dict[str, Any]:
    return parse_record(_read_regular(Path(path)))


def iter_records(results_dir: Path, problems: list[tuple[Path, str]] | None = None) -> Iterator[dict[str, Any]]:
    """Every valid record under ``results_dir`` (recursively); bad files are reported, not fatal.

    Each problem is appended to ``problems`` when given, otherwise issued as a warning naming the file.
    """
    for path in sorted(Path(results_dir).rglob("*.json")):
        if any(part.startswith(".") for part in path.relative_to(results_dir).parts):
            continue
        try:
            yield read_record(path)
        except RecordError as exc:
            if problems is not None:
                problems.append((path, str(exc)))
            else:
                warnings.warn(f"skipping {path}: {exc}", stacklevel=2)
