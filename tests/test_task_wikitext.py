"""The wikitext2 task: offline pydoc text, the byte-level transformer, and the WikiText-2 loader on a
fixture in the real format (the Hub's parquet files read by ``datasets.load_dataset``). No network:
conftest forbids sockets and sets HF_HUB_OFFLINE."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import pytest
import torch
from dendrobench.baselines.transformer import TINY_LM, build_transformer_lm
from dendrobench.tasks import wikitext2 as mod
from dendrobench.tasks.wikitext2 import WikiText2Task
from tasktools import fit_batch, shared_data

from dendrobench.contract.registry import get_task
from dendrobench.errors import DataUnavailableError
from dendrobench.running.cost import count_params

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


def byte_task(**options):
    """The byte-level variant (``task_options.tokens=byte``): online, wikitext-2-raw-v1 as bytes."""
    from dendrobench.contract.options import parse_options

    task = WikiText2Task(TINY_LM)
    task.set_options(parse_options(task, {"tokens": "byte", **options}))
    return task


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
    assert set(task.budgets) == {"smoke", "quick", "standard", "full", "converged"}
    # the error for RER is log-perplexity, the cross-entropy in nats: monotone in perplexity, 0 at 1
    assert task.evaluator.error(12.5) == pytest.approx(math.log(12.5))
    assert task.evaluator.error(1.0) == 0.0 and task.evaluator.error(300.0) < task.evaluator.error(301.0)
    assert math.isnan(task.evaluator.error(float("nan")))


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
    data = byte_task().load_data("online", 0, root=tmp_path)
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
        byte_task().load_data("online", 0, root=tmp_path / "nowhere")
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
        byte_task().load_data("online", 0, root=tmp_path)


def test_online_corrupt_file_is_named(tmp_path):
    write_wikitext_parquet(tmp_path)
    bad = tmp_path / "wikitext-2-raw-v1" / "test-00000-of-00001.parquet"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    with pytest.raises(DataUnavailableError, match="test-00000-of-00001.parquet is corrupt"):
        byte_task().load_data("online", 0, root=tmp_path)


# -- issue 10: word-level wikitext-2-v1 -----------------------------------------------------------
WORD_FIXTURE = Path(__file__).parent / "fixtures" / "wikitext-2"  # tiny token files in the real layout


def word_task(**options):
    from dendrobench.contract.options import parse_options

    task = WikiText2Task(TINY_LM)
    task.set_options(parse_options(task, options))
    return task


def expected_tokens(path: Path) -> list[str]:
    """pytorch/examples' word_language_model reading of a token file, written out independently."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            out += line.split() + ["<eos>"]
    return out


def test_word_level_from_token_files(tmp_path):
    data = word_task(seq_len=8).load_data("online", 0, root=WORD_FIXTURE)
    assert data.dataset == "wikitext-2-v1" and data.source == "online"
    train = expected_tokens(WORD_FIXTURE / "train.txt")
    vocab = list(dict.fromkeys(train))  # first appearance order, <unk> among them
    assert data.info["vocab_size"] == data.meta["vocab_size"] == len(vocab)
    assert data.info["tokens"] == {"train": len(train), "validation": len(expected_tokens(WORD_FIXTURE / "valid.txt")),
                                   "test": len(expected_tokens(WORD_FIXTURE / "test.txt"))}
    assert data.info["lines"]["train"] == 40
    assert [vocab[i] for i in data.train.tokens[:6].tolist()] == train[:6] == ["<eos>", "=", "Valkyria", "Chronicles",
                                                                               "III", "="]
    test = expected_tokens(WORD_FIXTURE / "test.txt")
    unseen = [w for w in test if w not in vocab]
    assert data.info["unseen_words_as_unk"]["test"] == len(unseen) > 0  # "Robert", "Boulter", ...
    unk = vocab.index("<unk>")
    assert [vocab[i] for i, w in zip(data.test.tokens.tolist(), test) if w in vocab] == [w for w in test if w in vocab]
    assert all(data.test.tokens[j] == unk for j, w in enumerate(test) if w not in vocab)
    assert data.info["split_sizes"]["train"] == (len(train) - 1) // 8
    x, y = data.train[0]
    assert x.shape == (8,) and torch.equal(x[1:], y[:-1])


def test_word_level_from_salesforce_names_and_hub_parquet(tmp_path):
    a = word_task().load_data("online", 0, root=WORD_FIXTURE)
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    for split, name in (("train", "train.txt"), ("valid", "valid.txt"), ("test", "test.txt")):
        shutil.copy(WORD_FIXTURE / name, tokens / f"wiki.{split}.tokens")
    b = word_task().load_data("online", 0, root=tokens)
    import datasets

    folder = tmp_path / "hub" / "wikitext-2-v1"
    folder.mkdir(parents=True)
    for split, name in (("train", "train.txt"), ("validation", "valid.txt"), ("test", "test.txt")):
        rows = (WORD_FIXTURE / name).read_text(encoding="utf-8").splitlines(keepends=True)
        datasets.Dataset.from_dict({"text": rows}).to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))
    c = word_task().load_data("online", 0, root=tmp_path / "hub")
    for other in (b, c):
        assert other.info["tokens"] == a.info["tokens"] and other.info["vocab_size"] == a.info["vocab_size"]
        assert torch.equal(other.train.tokens, a.train.tokens) and torch.equal(other.test.tokens, a.test.tokens)
    assert "wiki.train.tokens" in b.info["loaded_from"] and "parquet" in c.info["loaded_from"]


def test_word_level_missing_says_what_and_where(tmp_path):
    with pytest.raises(DataUnavailableError) as err:
        word_task().load_data("online", 0, root=tmp_path / "nowhere")
    assert "train.txt / valid.txt / test.txt" in str(err.value) and str(tmp_path / "nowhere") in str(err.value)


def test_tokens_default_per_source_and_offline_words(pydoc):
    assert pydoc.dataset == "pydoc-topics" and pydoc.meta["vocab_size"] == 256  # the quickstart is unchanged
    words = word_task(tokens="word").load_data("offline", 0)
    assert words.dataset == "pydoc-topics-words" and words.meta["vocab_size"] > 1000
    assert words.info["unseen_words_as_unk"]["test"] > 0


def test_model_options_and_seq_len(tmp_path):
    from dendrobench.contract.options import parse_options

    task = WikiText2Task()
    task.configure("quick")
    task.set_options(parse_options(task, {"d_model": 64, "layers": 3, "heads": 2, "d_ff": 128, "dropout": 0.1,
                                          "seq_len": 50}))
    cfg = task.model_config
    assert (cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff, cfg.dropout, cfg.max_len) == (64, 3, 2, 128, 0.1, 50)
    data = task.load_data("online", 0, root=WORD_FIXTURE)
    assert data.info["seq_len"] == 50 and data.train[0][0].shape == (50,)
    model = task.build_model(data)
    out = model(data.train[0][0].unsqueeze(0))
    assert out.shape == (1, 50, data.meta["vocab_size"])


@pytest.mark.parametrize("options, expect", [
    ({"tokens": "char"}, "task_options.tokens must be word | byte | null"),
    ({"seq_len": 0}, "seq_len must be >= 1"),
    ({"dropout": 1.0}, "dropout must be in [0, 1)"),
])
def test_bad_wikitext_options(options, expect):
    from dendrobench.contract.options import parse_options
    from dendrobench.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_options(WikiText2Task, options)
    assert expect in str(err.value)


@pytest.mark.slow
def test_real_wikitext2_counts():
    root = shared_data("wikitext-2/train.txt").parent
    data = word_task(seq_len=50).load_data("online", 0, root=root)
    assert data.info["tokens"] == {"train": 2_088_628, "validation": 217_646, "test": 245_569}
    assert data.info["vocab_size"] == 33_278 and data.info["lines"] == {"train": 36_718, "validation": 3_760,
                                                                       "test": 4_358}
    assert data.info["unseen_words_as_unk"] == {"train": 0, "validation": 0, "test": 0}
