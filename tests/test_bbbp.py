"""The bbbp task: scaffold split, featurisation, both data sources (offline, no network) and the GIN."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import torch
from dendrobench.baselines.gin import GIN, GINConfig, build_gin
from dendrobench.tasks import bbbp
from dendrobench.tasks.bbbp import BBBPTask, featurise_all, scaffold_split
from tasktools import fit_batch, shared_data

from dendrobench.errors import DataUnavailableError

FIXTURE = Path(__file__).parent / "fixtures" / "BBBP.csv"  # 53 real rows of MoleculeNet's BBBP.csv


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: a second intra-op thread gains nothing, and on a shared 2-core machine
    OpenMP's spin-waiting then makes a step 10-100x slower whenever the other core is busy."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dendrobench-cache")


@pytest.fixture(autouse=True)
def isolated_cache(cache, monkeypatch):
    """Every test writes its graph cache under a temp folder, never the user's ~/.cache."""
    monkeypatch.setenv("DENDROBENCH_CACHE", str(cache))
    monkeypatch.setenv("DENDROBENCH_OFFLINE", "1")


@pytest.fixture(scope="module")
def b3db(cache):
    """B3DB featurised once for the module (about 10 s); later loads come from the cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DENDROBENCH_CACHE", str(cache))
        return BBBPTask().load_data("offline", seed=0)


def online_root(tmp_path: Path) -> Path:
    """A MoleculeNet root laid out as PyG expects (<root>/bbbp/raw/BBBP.csv), so it never downloads."""
    raw = tmp_path / "moleculenet" / "bbbp" / "raw"
    raw.mkdir(parents=True)
    shutil.copy(FIXTURE, raw / "BBBP.csv")
    return tmp_path / "moleculenet"


# -- scaffold split -------------------------------------------------------------------------------
def test_scaffold_split_by_hand():
    # sets a x4, b x3, c x2, d x1 (10 molecules; cut-offs 8 and 9): a and b fill train to 7; c would
    # take train to 9 > 8, so it goes to valid (7 + 2 <= 9); d still fits train (8 <= 8).
    scaffolds = ["a", "b", "a", "c", "b", "a", "d", "c", "b", "a"]
    train, valid, test = scaffold_split(scaffolds)
    assert train == [0, 1, 2, 4, 5, 6, 8, 9]
    assert valid == [3, 7]
    assert test == []
    assert scaffold_split(scaffolds) == (train, valid, test)


def test_scaffold_split_ties_are_deterministic():
    scaffolds = ["x", "y", "z", "w"] * 5  # four sets of five: ties broken by first index, later first
    train, valid, test = scaffold_split(scaffolds)
    assert sorted(train + valid + test) == list(range(20))
    assert {scaffolds[i] for i in test} == {"x"}  # the set that comes first goes last
    assert scaffold_split(list(scaffolds)) == (train, valid, test)


def test_scaffold_split_on_b3db(b3db):
    graphs = b3db.train.dataset
    parts = [b3db.train.indices, b3db.val.indices, b3db.test.indices]
    n = len(graphs)
    assert sum(len(p) for p in parts) == n and len(set().union(*map(set, parts))) == n
    scaffold_sets = [{graphs.scaffolds[i] for i in p} for p in parts]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not scaffold_sets[a] & scaffold_sets[b], "a scaffold is in two splits"
    sizes = [len(p) / n for p in parts]
    assert sizes[0] == pytest.approx(0.8, abs=0.01)
    assert sizes[1] == pytest.approx(0.1, abs=0.01)
    assert sizes[2] == pytest.approx(0.1, abs=0.01)
    # the largest scaffold sets go to train
    counts: dict[str, int] = {}
    for s in graphs.scaffolds:
        counts[s] = counts.get(s, 0) + 1
    largest = sorted(counts, key=counts.get, reverse=True)[:10]
    assert set(largest) <= scaffold_sets[0]
    # the split does not depend on the seed (OGB's scaffold split is fixed); only init/order do
    again = BBBPTask().load_data("offline", seed=7)
    assert [again.train.indices, again.val.indices, again.test.indices] == parts


# -- featurisation --------------------------------------------------------------------------------
def test_invalid_smiles_are_dropped_and_counted():
    rows = [("CCO", 1.0), ("not_a_smiles", 0.0), ("", 1.0), ("C1CC", 0.0), ("c1ccccc1O", 0.0),
            ("OC(=O)[C+](O)(c1ccccc1)c1ccccc1", 1.0), (None, 1.0)]
    graphs, info = featurise_all(rows)
    assert info["rows"] == 7
    assert info["invalid_smiles_dropped"] == 5
    assert info["molecules"] == len(graphs) == 2
    assert graphs.smiles == ["CCO", "c1ccccc1O"]
    assert graphs.y.tolist() == [1.0, 0.0]
    assert graphs[1].x.shape == (7, 9) and graphs[1].edge_attr.shape[1] == 3


def test_featurisation_matches_from_smiles():
    from torch_geometric.utils import from_smiles

    graphs, _ = featurise_all([("CC(=O)Nc1ccc(O)cc1", 1.0)])
    ref = from_smiles("CC(=O)Nc1ccc(O)cc1")
    assert torch.equal(graphs[0].x, ref.x)
    assert torch.equal(graphs[0].edge_index, ref.edge_index)
    assert torch.equal(graphs[0].edge_attr, ref.edge_attr)


# -- offline data: B3DB ---------------------------------------------------------------------------
def test_b3db_offline(b3db, cache):
    assert b3db.dataset == "b3db" and b3db.source == "offline"
    assert b3db.info["rows"] == 7807
    assert b3db.info["molecules"] + b3db.info["invalid_smiles_dropped"] == 7807
    assert b3db.info["invalid_smiles_dropped"] >= 1
    y = b3db.train.dataset.y
    assert set(y.unique().tolist()) == {0.0, 1.0}
    assert int(y.sum()) == b3db.info["positives"]
    files = list((cache / "graphs").glob("b3db-*.pt"))
    assert len(files) == 1 and not list((cache / "graphs").glob("*.tmp"))


def test_b3db_cache_reload_is_identical(b3db, monkeypatch):
    monkeypatch.setattr(bbbp, "_MEMO", {})  # force the disk cache
    again = BBBPTask().load_data("offline", seed=0)
    a, b = b3db.train.dataset, again.train.dataset
    assert a is not b
    for name in ("x", "edge_index", "edge_attr", "y", "node_ptr", "edge_ptr"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.smiles == b.smiles and a.scaffolds == b.scaffolds
    assert again.info == b3db.info


def test_corrupt_graph_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("DENDROBENCH_CACHE", str(tmp_path / "c"))
    monkeypatch.setattr(bbbp, "_MEMO", {})
    root = online_root(tmp_path)
    first = BBBPTask().load_data("online", 0, root=root)
    (cached,) = (tmp_path / "c" / "graphs").glob("bbbp-*.pt")
    cached.write_bytes(b"not a torch file")
    monkeypatch.setattr(bbbp, "_MEMO", {})
    with pytest.warns(UserWarning, match="unreadable cache"):
        again = BBBPTask().load_data("online", 0, root=root)
    assert again.info == first.info


# -- online data: MoleculeNet BBBP (from a fixture in the real file format) ------------------------
def test_moleculenet_bbbp_from_fixture(tmp_path):
    data = BBBPTask().load_data("online", seed=0, root=online_root(tmp_path))
    assert data.dataset == "bbbp" and data.source == "online"
    assert data.info["rows"] == 53
    assert data.info["invalid_smiles_dropped"] == 2  # two real BBBP SMILES RDKit rejects
    assert data.info["molecules"] == 51
    assert len(data.train) + len(data.val) + len(data.test) == 51
    g = data.train[0]
    assert g.x.dtype == torch.long and g.x.shape[1] == 9 and g.edge_attr.shape[1] == 3
    assert g.y.shape == (1,)


def test_missing_online_data_says_what_and_where(tmp_path):
    root = tmp_path / "empty"
    with pytest.raises(DataUnavailableError) as err:
        BBBPTask().load_data("online", seed=0, root=root)
    message = str(err.value)
    assert str(root / "bbbp" / "raw" / "BBBP.csv") in message
    assert bbbp.BBBP_URL in message


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DENDROBENCH_OFFLINE")

    def no_network(url, dest, timeout=0.0):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(bbbp.downloads, "download", no_network)
    with pytest.raises(DataUnavailableError, match="download failed.*Network is unreachable"):
        BBBPTask().load_data("online", seed=0, root=tmp_path)
    assert not (tmp_path / "bbbp" / "raw" / "BBBP.csv").exists()


@pytest.mark.parametrize("content", [
    "num,name,p_np,smiles\n1,Propanolol,1,[Cl].CC(C)NCC(O)COc1cccc2ccccc12\n2,Terbutylchlor",  # cut short
    "<html><body>Access denied</body></html>\n",  # an error page saved as the CSV
    "",  # empty
])
def test_corrupt_online_file_names_the_file(tmp_path, content):
    raw = tmp_path / "bbbp" / "raw" / "BBBP.csv"
    raw.parent.mkdir(parents=True)
    raw.write_text(content)
    with pytest.raises(DataUnavailableError, match=str(raw)):
        BBBPTask().load_data("online", seed=0, root=tmp_path)


# -- the model ------------------------------------------------------------------------------------
def small_batch(task: BBBPTask, data, n: int = 8):
    loader = task.dataloader(torch.utils.data.Subset(data.train, range(n)), n, False, None)
    return next(iter(loader))


def test_gin_forward_shapes_and_width(tmp_path):
    task = BBBPTask()
    data = task.load_data("online", 0, root=online_root(tmp_path))
    batch = small_batch(task, data)
    model = task.build_model(data)
    out = model(*task.inputs(batch))
    assert out.shape == (8,) and out.dtype == torch.float32
    assert task.targets(batch).shape == (8,) and task.batch_size(batch) == 8
    assert task.loss(out, batch).ndim == 0
    params = [sum(p.numel() for p in task.build_model(data, w).parameters()) for w in (0.5, 1.0, 2.0)]
    assert params[0] < params[1] < params[2]
    assert build_gin(GINConfig(hidden=10, num_layers=2), 0.01).hidden == 1
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert type(linears[0]) is torch.nn.Linear and len(linears) == 2 * 3 + 1  # convertible by the engines


def test_gin_virtual_node_deepcopy_and_script(tmp_path):
    task = BBBPTask()
    data = task.load_data("online", 0, root=online_root(tmp_path))
    batch = small_batch(task, data)
    inputs = task.inputs(batch)
    for vn in (False, True):
        torch.manual_seed(0)
        model = GIN(hidden=16, num_layers=3, virtual_node=vn).eval()
        ref = model(*inputs)
        assert torch.allclose(copy.deepcopy(model)(*inputs), ref)
        scripted = torch.jit.script(model)
        assert torch.allclose(scripted(*inputs), ref, atol=1e-6)


def test_a_few_training_steps_reduce_the_loss(tmp_path):
    torch.manual_seed(0)
    task = BBBPTask(GINConfig(hidden=32, num_layers=2, dropout=0.0))
    data = task.load_data("online", 0, root=online_root(tmp_path))
    batch = small_batch(task, data, n=32)
    model = task.build_model(data)
    losses = fit_batch(task, model, batch, steps=15, lr=1e-2)
    assert losses[-1] < 0.7 * losses[0]


def test_dataloader_order_follows_the_generator(tmp_path):
    task = BBBPTask()
    data = task.load_data("online", 0, root=online_root(tmp_path))

    def order(seed: int) -> list[float]:
        loader = task.dataloader(data.train, 8, True, torch.Generator().manual_seed(seed))
        return torch.cat([b.x[:, 0].float().sum().view(1) for b in loader]).tolist()

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_budgets_and_description():
    task = BBBPTask()
    assert set(task.budgets) == {"smoke", "quick", "standard", "converged", "full"}
    for budget in task.budgets.values():
        budget.validate()
    assert task.metric == "roc_auc" and task.modality == "graph"
    assert set(task.datasets) == {"offline", "online"}
    task.configure("standard")
    assert task.model_config == bbbp.PAPER_GIN


# -- issue 10: BBBP.csv directly in data.root, split kinds and model options ------------------------
def test_bbbp_csv_directly_in_data_root(tmp_path):
    """A hand-downloaded BBBP.csv in data.root is read through MoleculeNet without writing there."""
    root = tmp_path / "by-hand"
    root.mkdir()
    shutil.copy(FIXTURE, root / "BBBP.csv")
    root.chmod(0o555)  # read-only: PyG's processed/ must go to our cache, not here
    try:
        data = BBBPTask().load_data("online", seed=0, root=root)
    finally:
        root.chmod(0o755)
    assert sorted(p.name for p in root.iterdir()) == ["BBBP.csv"]
    assert data.dataset == "bbbp" and data.info["molecules"] == 51 and data.info["invalid_smiles_dropped"] == 2
    assert data.info["file"] == str(root / "BBBP.csv")


def _task(**options):
    from dendrobench.contract.options import parse_options

    task = BBBPTask()
    task.configure("quick")
    task.set_options(parse_options(task, options))
    return task


def _indices(subset):
    return sorted(subset.indices)


def test_random_stratified_split(tmp_path):
    root = online_root(tmp_path)
    data = _task(split="random_stratified", fractions=[0.6, 0.2, 0.2]).load_data("online", 0, root=root)
    parts = [_indices(data.train), _indices(data.val), _indices(data.test)]
    assert [len(p) for p in parts] == [30, 10, 11]  # 51 molecules: sklearn rounds the test size up (10.2 -> 11)
    assert sum(len(p) for p in parts) == len({i for p in parts for i in p}) == 51
    y = data.train.dataset.y
    for part in parts:  # stratified: each split's positive rate within one molecule of the whole's
        assert abs(float(y[part].mean()) - float(y.mean())) <= 1.0 / len(part) + 1e-9
    assert "random_state=0" in data.info["split"]
    same = _task(split="random_stratified", fractions=[0.6, 0.2, 0.2]).load_data("online", 5, root=root)
    assert _indices(same.test) == parts[2]  # a fixed split_seed: the run seed does not move it
    moved = _task(split="random_stratified", fractions=[0.6, 0.2, 0.2], split_seed="seed").load_data("online", 5, root=root)
    assert _indices(moved.test) != parts[2] and "random_state=5" in moved.info["split"]


def test_scaffold_split_with_and_without_chirality():
    """pretrain-gnns keeps chirality in the scaffold: stereoisomers of a ring system then differ."""
    from dendrobench.tasks.bbbp import murcko_scaffold
    from rdkit import Chem

    a = Chem.MolFromSmiles("C[C@H]1CC[C@@H](CC1)c1ccccc1")
    b = Chem.MolFromSmiles("C[C@@H]1CC[C@@H](CC1)c1ccccc1")
    chiral_ring = Chem.MolFromSmiles("O[C@H]1C[C@@H]2CC[C@H]1C2")
    assert murcko_scaffold(a) == murcko_scaffold(b)
    assert murcko_scaffold(chiral_ring, chiral=True) != murcko_scaffold(chiral_ring)


def test_split_kinds_on_the_fixture(tmp_path):
    root = online_root(tmp_path)
    plain = _task(split="scaffold").load_data("online", 0, root=root)
    chiral = _task(split="scaffold_chiral").load_data("online", 0, root=root)
    assert plain.info["split"].startswith("scaffold: ") and "without chirality" in plain.info["split"]
    assert chiral.info["split"].startswith("scaffold_chiral: ") and "with chirality" in chiral.info["split"]
    graphs = plain.train.dataset
    assert len(graphs.scaffolds_chiral) == len(graphs.scaffolds) == 51
    tr, va, te, _ = bbbp.split_graphs(graphs, bbbp.BBBPOptions(split="scaffold_chiral"), 0)
    assert (tr, va, te) == scaffold_split(graphs.scaffolds_chiral)


def test_model_options_change_the_gin(tmp_path):
    data = BBBPTask().load_data("online", 0, root=online_root(tmp_path))
    task = _task(layers=4, hidden=32, dropout=0.2, pooling="sum")
    model = task.build_model(data)
    assert (model.num_layers, model.hidden, model.dropout, model.pooling) == (4, 32, 0.2, "sum")
    assert task.build_model(data, 2.0).hidden == 64  # width still scales the chosen hidden size
    default = _task().build_model(data)
    assert (default.num_layers, default.hidden, default.pooling) == (3, 64, "mean")
    batch = small_batch(task, data)
    for pooling in ("mean", "sum", "max"):
        m = _task(pooling=pooling).build_model(data).eval()
        out = m(*task.inputs(batch))
        assert out.shape == (8,) and torch.isfinite(out).all()
        scripted = torch.jit.script(m)
        assert torch.allclose(scripted(*task.inputs(batch)), out, atol=1e-5)


@pytest.mark.parametrize("options, expect", [
    ({"split": "random"}, "task_options.split must be scaffold | scaffold_chiral | random_stratified"),
    ({"fractions": [0.8, 0.2]}, "fractions must be three numbers"),
    ({"pooling": "attention"}, "task_options.pooling must be mean | sum | max | null"),
    ({"layers": 0}, "layers must be >= 1"),
    ({"dropout": 1.5}, "dropout must be in [0, 1)"),
])
def test_bad_bbbp_options(options, expect):
    from dendrobench.contract.options import parse_options
    from dendrobench.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_options(BBBPTask, options)
    assert expect in str(err.value)


@pytest.mark.slow
def test_real_bbbp_counts():
    """The real MoleculeNet file: 2,050 rows, 11 SMILES RDKit rejects, 2,039 graphs (Hu et al.)."""
    root = shared_data("bbbp/BBBP.csv").parent
    task = _task(split="scaffold_chiral")
    data = task.load_data("online", 0, root=root)
    assert data.info["rows"] == 2050 and data.info["invalid_smiles_dropped"] == 11
    assert data.info["molecules"] == 2039
    assert data.info["split_sizes"] == {"train": 1631, "val": 204, "test": 204}
    plain = _task(split="scaffold").load_data("online", 0, root=root)
    assert len(set(_indices(plain.test)) ^ set(_indices(data.test))) // 2 == 19  # as the issue says
    strat = _task(split="random_stratified").load_data("online", 0, root=root)
    assert strat.info["split_sizes"] == {"train": 1631, "val": 204, "test": 204}


def _pyg_passes(dataset, bs, shuffle, gen, drop_last, passes=3):
    from torch_geometric.loader import DataLoader

    loader = DataLoader(dataset, batch_size=bs, shuffle=shuffle, generator=gen, drop_last=drop_last)
    return [list(loader) for _ in range(passes)]


@pytest.mark.parametrize("bs,shuffle,drop_last", [(64, True, False), (7, True, True), (50, False, False), (1, True, False)])
def test_graph_batches_are_pygs_batches_bit_for_bit(b3db, bs, shuffle, drop_last):
    """The gathered batches (issue 20) against PyG's own DataLoader over the same split: every
    tensor the model and loss read, pass after pass, and the generator left where PyG leaves it."""
    task = BBBPTask()
    split = torch.utils.data.Subset(b3db.train, list(range(0, len(b3db.train), 9)))  # a subset of a subset
    g_old, g_new = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    loader = bbbp.GraphBatches(*bbbp._store_and_ids(split), bs, shuffle, g_new, drop_last)
    old = _pyg_passes(split, bs, shuffle, g_old, drop_last)
    new = [list(loader) for _ in range(3)]
    assert [len(p) for p in new] == [len(p) for p in old] and len(new[0]) == len(loader)
    for p_old, p_new in zip(old, new):
        for bo, bn in zip(p_old, p_new):
            assert bn.num_graphs == bo.num_graphs
            for key in ("x", "edge_index", "edge_attr", "y", "batch", "ptr"):
                a, b = getattr(bo, key), getattr(bn, key)
                assert a.dtype == b.dtype and torch.equal(a, b), key
            assert task.inputs(bn)[0].shape == task.inputs(bo)[0].shape
    assert torch.equal(torch.rand(3, generator=g_old), torch.rand(3, generator=g_new))


def test_the_task_loader_gathers_its_own_splits_and_leaves_other_datasets_to_pyg(b3db):
    task = BBBPTask()
    assert isinstance(task.dataloader(b3db.train, 32, True, torch.Generator().manual_seed(0)), bbbp.GraphBatches)
    data_list = [b3db.train[i] for i in range(5)]
    assert not isinstance(task.dataloader(data_list, 2, False, None), bbbp.GraphBatches)
