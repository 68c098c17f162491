"""The wikitext2 task: offline pydoc text, the byte-level transformer, and the WikiText-2 loader on a
fixture in the real format (the Hub's parquet files read by ``datasets.load_dataset``). No network:
conftest forbids sockets and sets HF_HUB_OFFLINE."""

from __future__ import annotations

import time

import pytest
import torch
from dendrobench.baselines.transformer import TINY_LM, build_transformer_lm
from dendrobench.tasks import wikitext2 as mod
from dendrobench.tasks.wikitext2 import WikiText2Task
from tasktools import fit_batch

from dendrobench.cost import count_params
from dendrobench.errors import DataUnavailableError
from dendrobench.registry import get_task

WIKI_LINES = {
    "train": ["", " = Valkyria Chronicles III = \n", "", " Senjō no Valkyria 3 : Unrecorded Chronicles is a "
              "tactical role @-@ playing video game developed by Sega and Media.Vision . \n"] * 6,
    "validation": ["", " = Homarus gammarus = \n", "", " Homarus gammarus , known as the European lobster or "
                   "common lobster , is a species of clawed lobster from the eastern Atlantic Ocean . \n"] * 3,
    "test": ["", " = Robert Boulter = \n", "", " Robert Boulter is an English film , television and theatre "
             "actor . He had a guest @-@ starring role on the television series The Bill in 2000 . \n"] * 3,
}


@pytest.fixture(autouse=True)
def offline_cache(private_cache):
    """Every test here: a private cache folder, downloads forbidden."""


@pytest.fixture(scope="module")
def pydoc():
    return WikiText2Task(TINY_LM).load_data("offline", 0)


def write_wikitext_parquet(root, lines=WIKI_LINES) -> None:
    """The three files of the Hub's ``Salesforce/wikitext`` ``wikitext-2-raw-v1`` config, same names and column."""
    import datasets

    folder = root / "wikitext-2-raw-v1"
    folder.mkdir(parents=True)
    for split, rows in lines.items():
        datasets.Dataset.from_dict({"text": rows}).to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))


# -- offline data ---------------------------------------------------------------------------------
def test_registered_and_described():
    task = get_task("wikitext2")
    assert isinstance(task, WikiText2Task)
    assert task.metric == "perplexity" and task.modality == "text"
    assert set(task.budgets) == {"smoke", "quick", "standard", "full"}
    assert task.evaluator.error(12.5) == 12.5  # unbounded: the error is the value itself


def test_offline_pydoc_data(pydoc):
    assert pydoc.dataset == "pydoc-topics" and pydoc.source == "offline"
    total = sum(pydoc.info["bytes"].values())
    assert total > 400_000 and sum(pydoc.info["words"].values()) > 60_000
    fractions = [pydoc.info["bytes"][k] / total for k in mod.SPLITS]
    assert 0.75 < fractions[0] < 0.85 and all(0.05 < f < 0.15 for f in fractions[1:])
    x, y = pydoc.train[0]
    seq = TINY_LM.max_len
    assert x.shape == y.shape == (seq,) and x.dtype == torch.int64
    assert torch.equal(x[1:], y[:-1])  # targets are the inputs shifted by one
    assert int(x.max()) < 256 and pydoc.meta["vocab_size"] == 256
    assert len(pydoc.val) > 0 and len(pydoc.test) > 0


def test_offline_split_deterministic_and_disjoint(pydoc):
    texts_a, names_a = mod.pydoc_texts()
    texts_b, names_b = mod.pydoc_texts()
    assert texts_a == texts_b and names_a == names_b
    train, val, test = (set(names_a[k]) for k in mod.SPLITS)
    assert not (train & val or train & test or val & test)
    again = WikiText2Task(TINY_LM).load_data("offline", 7)  # splits do not depend on the seed
    for a, b in ((pydoc.train, again.train), (pydoc.val, again.val), (pydoc.test, again.test)):
        assert torch.equal(a.tokens, b.tokens)
    # contiguous windows cover the stream without overlap
    assert len(pydoc.train) == (len(pydoc.train.tokens) - 1) // TINY_LM.max_len


# -- model --------------------------------------------------------------------------------------
def test_model_shapes_width_and_causality(pydoc):
    task = WikiText2Task(TINY_LM)
    model = task.build_model(pydoc).eval()
    batch = next(iter(task.dataloader(pydoc.val, 4, False, None)))
    out = model(*task.inputs(batch))
    assert out.shape == (4, TINY_LM.max_len, 256)
    assert count_params(task.build_model(pydoc, 1.5)) > count_params(model) > count_params(task.build_model(pydoc, 0.5))
    assert count_params(task.build_model(pydoc, 1.05)) > count_params(model)  # continuous: the wide arm can match
    x = batch[0][:1].clone()
    x2 = x.clone()
    x2[0, -1] = (x2[0, -1] + 1) % 256  # changing the last token must not change earlier predictions
    with torch.no_grad():
        assert torch.allclose(model(x)[0, :-1], model(x2)[0, :-1], atol=1e-5)
    # attention is plain Linear layers (dendrite engines can convert them), no nn.MultiheadAttention
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules())
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 6 * TINY_LM.n_layers + 1


def test_untrained_perplexity_and_training_reduces_loss(pydoc):
    torch.manual_seed(0)
    task = WikiText2Task(TINY_LM)
    model = task.build_model(pydoc)
    val_loader = task.dataloader(torch.utils.data.Subset(pydoc.val, range(16)), 8, False, None)
    ppl = task.evaluate(model, val_loader, torch.device("cpu"))
    assert 200 < ppl["perplexity"] < 320  # near-uniform over 256 bytes
    batch = next(iter(task.dataloader(pydoc.train, 16, True, torch.Generator().manual_seed(0))))
    losses = fit_batch(task, model, batch, steps=15, lr=3e-3)
    assert losses[-1] < losses[0] - 0.5
    after = task.evaluate(model, val_loader, torch.device("cpu"))
    assert after["perplexity"] < ppl["perplexity"] and set(after) == {"perplexity", "nll"}


def test_configure_picks_model_and_sequence_length(pydoc):
    task = WikiText2Task()
    task.configure("smoke")
    assert task.model_config == TINY_LM
    task.configure("full")
    assert task.model_config.n_layers == 12
    # a model built for longer sequences than its config still accepts them
    task.configure("smoke")
    model = task.build_model(type(pydoc)(pydoc.train, pydoc.val, pydoc.test, "x", "offline", meta={"vocab_size": 256, "seq_len": 100}))
    assert model(torch.zeros(1, 100, dtype=torch.int64)).shape == (1, 100, 256)
    assert build_transformer_lm(TINY_LM, 256).max_len == TINY_LM.max_len


# -- online: WikiText-2 ---------------------------------------------------------------------------
def test_online_wikitext_parquet_fixture(tmp_path):
    write_wikitext_parquet(tmp_path)
    data = WikiText2Task(TINY_LM).load_data("online", 0, root=tmp_path)
    assert data.dataset == "wikitext-2-raw-v1" and data.source == "online"
    expected = {k: "".join(v) for k, v in WIKI_LINES.items()}
    assert data.info["bytes"] == {k: len(v.encode("utf-8")) for k, v in expected.items()}
    decoded = bytes(data.val.tokens.tolist()).decode("utf-8")
    assert decoded == expected["validation"] and "Homarus" in decoded
    assert len(data.train) > 0 and data.meta["vocab_size"] == 256
    # the same code path as the Hub dataset: texts_from_dataset_dict over a datasets.DatasetDict
    texts = mod.load_text_dataset("parquet", data_files=mod.local_parquet_files(tmp_path), cache=tmp_path / "hf")
    assert texts == expected


def test_online_missing_is_a_quick_clear_error(tmp_path):
    start = time.monotonic()
    with pytest.raises(DataUnavailableError) as err:
        WikiText2Task(TINY_LM).load_data("online", 0, root=tmp_path / "nowhere")
    message = str(err.value)
    assert "wikitext-2-raw-v1/train-00000-of-00001.parquet" in message
    assert str(tmp_path / "nowhere" / "wikitext-2-raw-v1") in message
    assert time.monotonic() - start < 20


def test_online_unreachable_hub_uses_cache_only(tmp_path, monkeypatch):
    for var in ("DENDROBENCH_OFFLINE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    assert mod.hub_reachable(timeout=0.5) is False  # the socket guard stands in for a closed network
    monkeypatch.setattr(mod, "hub_reachable", lambda timeout=mod.PROBE_TIMEOUT_S: False)
    with pytest.raises(DataUnavailableError, match="from the cache"):
        WikiText2Task(TINY_LM).load_data("online", 0, root=tmp_path)


def test_online_corrupt_file_is_named(tmp_path):
    write_wikitext_parquet(tmp_path)
    bad = tmp_path / "wikitext-2-raw-v1" / "test-00000-of-00001.parquet"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    with pytest.raises(DataUnavailableError, match="test-00000-of-00001.parquet is corrupt"):
        WikiText2Task(TINY_LM).load_data("online", 0, root=tmp_path)
