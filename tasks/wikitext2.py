"""The ``wikitext2`` task: byte-level causal language modelling with a small transformer, perplexity.

Tokens are UTF-8 bytes (vocabulary 256): nothing to download or train, no unknown tokens, and the
same vocabulary for every data source. Perplexity is therefore *per byte* (exp of the mean NLL in
nats per byte), not WikiText's usual per-word figure; the error used for RER is the perplexity itself.

Data
  * ``offline`` (default): real English technical prose that ships with Python, the documentation
    topics of ``pydoc_data.topics`` (79 topics, ~65k words, ~470k bytes). Topics are concatenated in
    sorted order and split contiguously, at topic boundaries, about 80/10/10 by bytes (whole topics
    per split, so no text is in two splits). It stands in for WikiText-2 in the same format (a raw
    text stream per split), so records say ``dataset: pydoc-topics``.
  * ``online``: ``wikitext-2-raw-v1`` (train / validation / test as published) through
    ``datasets.load_dataset``. Looked for first as the Hub's parquet files in
    ``root/wikitext-2-raw-v1/{train,validation,test}-*.parquet`` (``root`` = ``data.root``, default
    ``$DENDROBENCH_CACHE/wikitext2``), read by the ``parquet`` builder; otherwise
    ``load_dataset("Salesforce/wikitext", "wikitext-2-raw-v1")`` with its cache in ``root/hf``. If
    the Hub is unreachable (a 3 s probe) or ``DENDROBENCH_OFFLINE`` / ``HF_HUB_OFFLINE`` is set, only
    a cached copy is used, and without one a :class:`DataUnavailableError` says which files to fetch
    and where to put them: never a hang. Both paths share :func:`texts_from_dataset_dict`.

Sequences: each split's byte stream is cut into non-overlapping windows of ``seq_len + 1`` bytes
(input = the first ``seq_len``, target = the last ``seq_len``). Training shuffles the windows with
the runner's generator; evaluation sums the NLL of every target byte of every window of the split
(each window starts without context, the usual non-overlapping evaluation). Splits do not depend on
the seed.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from dendrobench.baselines.transformer import (
    GPT2_SMALL_LM,
    MEDIUM_LM,
    SMALL_LM,
    TINY_LM,
    TransformerConfig,
    build_transformer_lm,
)
from torch import nn
from torch.utils.data import Dataset

from dendrobench.errors import DataUnavailableError, UserError
from dendrobench.task import Budget, Task, TaskData, cache_dir, move_to

VOCAB_SIZE = 256
HF_NAME, HF_CONFIG = "Salesforce/wikitext", "wikitext-2-raw-v1"
HF_PARQUET_URL = "https://huggingface.co/datasets/Salesforce/wikitext/resolve/main/wikitext-2-raw-v1/{split}-00000-of-00001.parquet"
SPLITS = ("train", "validation", "test")
PROBE_TIMEOUT_S = 3.0


def default_root() -> Path:
    return cache_dir("wikitext2")


# -- token windows --------------------------------------------------------------------------------
def encode(text: str) -> torch.Tensor:
    """UTF-8 bytes as int64 tokens."""
    return torch.tensor(list(text.encode("utf-8")), dtype=torch.int64) if text else torch.zeros(0, dtype=torch.int64)


class TokenWindows(Dataset):
    """Non-overlapping windows of ``seq_len + 1`` tokens from one stream; items are (input, target)."""

    def __init__(self, tokens: torch.Tensor, seq_len: int):
        if seq_len < 1:
            raise ValueError(f"seq_len must be positive, got {seq_len}")
        self.tokens, self.seq_len = tokens, int(seq_len)
        self.n = max(0, (len(tokens) - 1) // self.seq_len)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        start = i * self.seq_len
        chunk = self.tokens[start:start + self.seq_len + 1]
        return chunk[:-1], chunk[1:]


def make_task_data(texts: dict[str, str], seq_len: int, dataset: str, source: str, info: dict[str, Any]) -> TaskData:
    """TaskData from the three raw text streams (``train`` / ``validation`` / ``test``)."""
    streams = {k: encode(texts[k]) for k in SPLITS}
    parts = {k: TokenWindows(v, seq_len) for k, v in streams.items()}
    for k, ds in parts.items():
        if len(ds) == 0:
            raise DataUnavailableError(f"{dataset}: the {k} split holds {len(streams[k])} bytes, fewer than one "
                                       f"window of {seq_len + 1}")
    info = {**info, "tokenizer": "utf-8 bytes (vocabulary 256)", "seq_len": int(seq_len),
            "bytes": {k: len(v) for k, v in streams.items()},
            "words": {k: len(texts[k].split()) for k in SPLITS},
            "split_sizes": {"train": len(parts["train"]), "val": len(parts["validation"]), "test": len(parts["test"])}}
    return TaskData(train=parts["train"], val=parts["validation"], test=parts["test"], dataset=dataset, source=source,
                    info=info, meta={"vocab_size": VOCAB_SIZE, "seq_len": int(seq_len)})


# -- offline: pydoc topics ------------------------------------------------------------------------
def pydoc_texts(fractions: tuple[float, float] = (0.8, 0.9)) -> tuple[dict[str, str], dict[str, list[str]]]:
    """pydoc's topics in sorted order, cut at the topic boundaries nearest to ``fractions`` of the bytes."""
    from pydoc_data.topics import topics

    keys = sorted(topics)
    sizes = [len(topics[k].encode("utf-8")) for k in keys]
    total = sum(sizes)
    cuts, acc = [], 0
    ends = []
    for s in sizes:
        acc += s
        ends.append(acc)
    for f in fractions:  # index of the first topic after the cut
        target = f * total
        cuts.append(1 + min(range(len(ends)), key=lambda i: abs(ends[i] - target)))
    bounds = [(0, cuts[0]), (cuts[0], cuts[1]), (cuts[1], len(keys))]
    names = {split: keys[a:b] for split, (a, b) in zip(SPLITS, bounds)}
    texts = {split: "".join(topics[k] + "\n" for k in names[split]) for split in SPLITS}
    return texts, names


def load_pydoc_data(seq_len: int) -> TaskData:
    texts, names = pydoc_texts()
    info = {"split": "pydoc_data.topics in sorted order, contiguous ~80/10/10 by bytes at topic boundaries "
                     "(seed-independent)",
            "topics": {k: len(v) for k, v in names.items()},
            "first_topic": {k: v[0] for k, v in names.items()}}
    return make_task_data(texts, seq_len, "pydoc-topics", "offline", info)


# -- online: WikiText-2 through datasets ----------------------------------------------------------
def texts_from_dataset_dict(dd: Any) -> dict[str, str]:
    """The raw text stream of each split of a ``datasets.DatasetDict`` with a ``text`` column
    (WikiText rows are lines that keep their trailing newline, so they are joined with nothing)."""
    missing = [s for s in SPLITS if s not in dd]
    if missing:
        raise DataUnavailableError(f"WikiText data has no {', '.join(missing)} split (found {sorted(dd)})")
    out = {}
    for split in SPLITS:
        if "text" not in dd[split].column_names:
            raise DataUnavailableError(f"WikiText {split} split has no 'text' column (columns: {dd[split].column_names})")
        out[split] = "".join(dd[split]["text"])
    return out


def local_parquet_files(root: Path) -> dict[str, list[str]] | None:
    """``{split: [files]}`` when ``root/wikitext-2-raw-v1`` holds parquet files for all three splits."""
    folder = root / HF_CONFIG
    files = {s: sorted(str(p) for p in folder.glob(f"{s}-*.parquet")) for s in SPLITS}
    return files if all(files.values()) else None


def first_unreadable_parquet(files: dict[str, list[str]]) -> str | None:
    """The first of ``files`` whose parquet footer cannot be read (to name a corrupt file)."""
    import pyarrow.parquet as pq

    for paths in files.values():
        for path in paths:
            try:
                pq.read_metadata(path)
            except Exception:  # noqa: BLE001
                return path
    return None


def _how_to_get(root: Path) -> str:
    urls = ", ".join(HF_PARQUET_URL.format(split=s) for s in SPLITS)
    return (f"download {urls} into {root / HF_CONFIG} (or run once with network access so that "
            f"datasets caches {HF_NAME} in {root / 'hf'}; data.root=DIR uses DIR instead of {root})")


def _offline_forced() -> bool:
    return any(os.environ.get(v, "").strip() not in ("", "0", "false", "False")
               for v in ("DENDROBENCH_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """A quick TCP probe of huggingface.co, so a closed network fails in seconds, not after retries."""
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except Exception:  # noqa: BLE001 - any failure (including a test's socket guard) means "no"
        return False


@contextlib.contextmanager
def hf_offline(enabled: bool) -> Iterator[None]:
    """Put ``datasets`` / ``huggingface_hub`` in offline mode (cache only) for the duration."""
    if not enabled:
        yield
        return
    import datasets.config as dconf
    import huggingface_hub.constants as hconst

    saved = (dconf.HF_HUB_OFFLINE, dconf.HF_DATASETS_OFFLINE, hconst.HF_HUB_OFFLINE)
    dconf.HF_HUB_OFFLINE = dconf.HF_DATASETS_OFFLINE = hconst.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        dconf.HF_HUB_OFFLINE, dconf.HF_DATASETS_OFFLINE, hconst.HF_HUB_OFFLINE = saved


def load_text_dataset(path: str, name: str | None = None, data_files: dict[str, list[str]] | None = None,
                      cache: Path | None = None, offline: bool = False) -> dict[str, str]:
    """``datasets.load_dataset(path, name, data_files=...)`` -> raw text per split. The one code path
    for the Hub dataset and for local parquet files (the real files or a test fixture)."""
    import datasets

    with hf_offline(offline):
        dd = datasets.load_dataset(path, name, data_files=data_files, cache_dir=str(cache) if cache else None)
    return texts_from_dataset_dict(dd)


def load_wikitext_data(root: Path | None, seq_len: int) -> TaskData:
    root = Path(root).expanduser() if root is not None else default_root()
    files = local_parquet_files(root)
    how = _how_to_get(root)
    try:
        if files is not None:
            where = f"parquet files in {root / HF_CONFIG}"
            texts = load_text_dataset("parquet", data_files=files, cache=root / "hf")
        else:
            offline = _offline_forced() or not hub_reachable()
            where = f"{HF_NAME} ({HF_CONFIG}) {'from the cache in ' + str(root / 'hf') if offline else 'from the Hub'}"
            texts = load_text_dataset(HF_NAME, HF_CONFIG, cache=root / "hf", offline=offline)
    except DataUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - missing, corrupt or unreachable: one actionable message
        bad = first_unreadable_parquet(files) if files is not None else None
        if bad is not None:
            raise DataUnavailableError(f"WikiText-2 file {bad} is corrupt or partial (not readable as parquet); "
                                       f"delete it and {how}") from exc
        raise DataUnavailableError(f"could not load WikiText-2 ({where}): {type(exc).__name__}: {exc}; {how}") from exc
    info = {"split": "the published wikitext-2-raw-v1 train / validation / test", "loaded_from": where}
    return make_task_data(texts, seq_len, "wikitext-2-raw-v1", "online", info)


# -- the task -------------------------------------------------------------------------------------
class WikiText2Task(Task):
    """Byte-level causal language modelling, small transformer, perplexity per byte."""

    name = "wikitext2"
    modality = "text"
    description = "Language modelling: byte-level causal transformer (explicit q/k/v Linear), perplexity per byte"
    metric = "perplexity"
    version = "1"
    datasets = {
        "offline": "Python's bundled documentation text (pydoc_data.topics, ~65k words), a stand-in for "
                   "WikiText-2 in the same raw-text format (records say dataset=pydoc-topics)",
        "online": "wikitext-2-raw-v1 via datasets.load_dataset (Hub parquet files in "
                  "$DENDROBENCH_CACHE/wikitext2/wikitext-2-raw-v1 or the Hub cache)",
    }
    budgets = {
        # seconds: a 1-layer, 32-wide model, 10 steps on a fixed subset
        "smoke": Budget(epochs=2, batch_size=16, lr=3e-3, steps_per_epoch=5, eval_batch_size=64,
                        max_train_examples=256, max_eval_examples=64),
        # about half a minute per arm on 2 CPU cores: 2 layers x 128 wide (479 k), 300 steps of
        # 16 x 128 bytes (~1.6 passes over the pydoc training text)
        "quick": Budget(epochs=5, batch_size=16, lr=2e-3, steps_per_epoch=60, optimizer="adamw", weight_decay=0.01,
                        schedule="cosine", warmup_steps=20, grad_clip=1.0, eval_batch_size=128),
        # a paper-like CPU run: 4 layers x 256 wide, sequences of 256, 5,000 steps
        "standard": Budget(epochs=20, batch_size=32, lr=1e-3, steps_per_epoch=250, optimizer="adamw",
                           weight_decay=0.01, schedule="cosine", warmup_steps=200, grad_clip=1.0, eval_batch_size=64),
        # GPU scale: GPT-2-small-shaped model, AdamW 6e-4 with warm-up and cosine decay (nanoGPT-style)
        "full": Budget(epochs=50, batch_size=32, lr=6e-4, steps_per_epoch=1000, optimizer="adamw", weight_decay=0.1,
                       schedule="cosine", warmup_steps=2000, grad_clip=1.0, eval_batch_size=32),
    }
    models: dict[str, TransformerConfig] = {"smoke": TINY_LM, "quick": SMALL_LM, "standard": MEDIUM_LM,
                                            "full": GPT2_SMALL_LM}

    def __init__(self, model: TransformerConfig | None = None):
        self.model_config: TransformerConfig = model or self.models["quick"]


    # -- data -------------------------------------------------------------------------------
    def load_data(self, source: str, seed: int, root: Path | None = None) -> TaskData:
        seq_len = self.model_config.max_len
        if source == "offline":
            return load_pydoc_data(seq_len)
        if source == "online":
            return load_wikitext_data(root, seq_len)
        raise UserError(f"unknown data source {source!r}; valid data sources: offline, online")

    # -- model ------------------------------------------------------------------------------
    def build_model(self, data: TaskData, width: float = 1.0) -> nn.Module:
        config = self.model_config
        seq_len = int(data.meta.get("seq_len", config.max_len))
        if seq_len > config.max_len:
            config = TransformerConfig(**{**config.__dict__, "max_len": seq_len})
        return build_transformer_lm(config, int(data.meta["vocab_size"]), width)

    def inputs(self, batch: Any) -> Sequence[torch.Tensor]:
        return (batch[0],)

    def targets(self, batch: Any) -> torch.Tensor:
        return batch[1]

    def loss(self, output: torch.Tensor, batch: Any) -> torch.Tensor:
        target = self.targets(batch)
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: nn.Module, loader: Any, device: torch.device) -> dict[str, float]:
        """Summed NLL and token count per batch, in the ``perplexity`` evaluator's format."""
        model.eval()
        nll, counts = [], []
        for batch in loader:
            batch = move_to(batch, device)
            out = model(*self.inputs(batch))
            target = self.targets(batch)
            nll.append(float(F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), target.reshape(-1),
                                             reduction="sum")))
            counts.append(int(target.numel()))
        return self.evaluator.eval({"y_true": torch.tensor(counts, dtype=torch.float64),
                                    "y_pred": torch.tensor(nll, dtype=torch.float64)})
