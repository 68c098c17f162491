"""OGB-style GIN for molecular property prediction (the `bbbp` task's base model).

Follows the OGB ``mol`` example (``examples/graphproppred/mol/conv.py``) and Hu et al. 2020,
"Strategies for Pre-training Graph Neural Networks": atoms and bonds enter as categorical OGB-style
features (the 9 atom / 3 bond columns of :func:`torch_geometric.utils.from_smiles`), each column
has its own embedding and the embeddings are summed; every layer is a GIN convolution with edge
features (``GINEConv``: ``mlp((1 + eps) * h_i + sum_j relu(h_j + e_ij))``) followed by BatchNorm,
ReLU (not after the last layer) and dropout; graphs are mean-pooled and a linear head gives one
logit (``pooling``: mean by default, sum or max as options). An optional virtual node (OGB's ``GNN_node_Virtualnode``) is off by default.

Why the details matter here:

* Every dense layer is a plain :class:`torch.nn.Linear` (not ``torch_geometric.nn.Linear`` / ``MLP``):
  the dendrite engines convert exactly ``torch.nn.Linear`` / ``ConvNd`` modules, so the MLP inside
  each convolution, the virtual-node MLPs and the head are all convertible.
* ``forward(x, edge_index, edge_attr, batch)`` takes plain tensors, so the runner can call
  ``model(*inputs)``, count FLOPs with ``torch.utils.flop_counter`` and export the model.
* ``width`` scales the hidden size (``max(1, round(hidden * width))``) for the capacity-matched
  ``wide`` and the ``compressed`` arms.

Export (checked with torch 2.15 / PyG 2.8, with and without the virtual node): the model deep-copies,
and ``torch.jit.script`` works and gives the same outputs on any batch. ``torch.jit.trace`` works but
freezes the number of graphs in the batch (``global_mean_pool`` reads ``batch.max() + 1`` as a Python
int while tracing), so a traced model matches only on batches with that many graphs;
``torch.onnx.export`` (TorchScript exporter) runs, with the same caveat.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch_geometric.nn import GINEConv, global_add_pool, global_max_pool, global_mean_pool
from torch_geometric.utils.smiles import e_map, x_map

POOLINGS = ("mean", "sum", "max")

# Vocabulary sizes of the categorical columns that torch_geometric.utils.from_smiles produces,
# in column order. Looked up from PyG itself so the embeddings always cover its features.
ATOM_FEATURE_DIMS: tuple[int, ...] = tuple(len(v) for v in x_map.values())  # 9 columns
BOND_FEATURE_DIMS: tuple[int, ...] = tuple(len(v) for v in e_map.values())  # 3 columns


@dataclass(frozen=True)
class GINConfig:
    """Architecture of the GIN; the defaults are Hu et al. 2020 / OGB's (300 hidden, 5 layers)."""

    hidden: int = 300
    num_layers: int = 5
    dropout: float = 0.5
    virtual_node: bool = False
    residual: bool = False
    pooling: str = "mean"  # mean (OGB / Hu et al.) | sum | max: how node states become a graph's

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def scaled(hidden: int, width: float) -> int:
    """The hidden size for a width multiplier: ``int(round(hidden * width))``, at least 1."""
    if not width > 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return max(1, int(round(hidden * width)))


class FeatureEncoder(nn.Module):
    """Sum of one embedding per categorical feature column (OGB's AtomEncoder / BondEncoder)."""

    def __init__(self, dims: tuple[int, ...], hidden: int):
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(d, hidden) for d in dims)
        for emb in self.embeddings:
            nn.init.xavier_uniform_(emb.weight.data)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        if feats.dim() == 1:
            feats = feats.unsqueeze(-1)
        out = torch.zeros(0)  # replaced in the first iteration; keeps TorchScript's types simple
        for i, emb in enumerate(self.embeddings):
            term = emb(feats[:, i])
            out = term if i == 0 else out + term
        return out


def mlp(hidden: int) -> nn.Sequential:
    """The 2-layer MLP inside each GIN layer (OGB: hidden -> 2*hidden -> hidden), plain nn.Linear."""
    return nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.BatchNorm1d(2 * hidden), nn.ReLU(),
                         nn.Linear(2 * hidden, hidden))


class GINLayer(nn.Module):
    """One OGB GIN layer: its own bond embedding, GINEConv with a learnable eps (init 0), BatchNorm.

    With a virtual node, ``vn_mlp`` updates the virtual node after this layer (None in the last).
    """

    def __init__(self, hidden: int, vn_mlp: nn.Module | None = None):
        super().__init__()
        self.bond_encoder = FeatureEncoder(BOND_FEATURE_DIMS, hidden)
        self.conv = GINEConv(mlp(hidden), eps=0.0, train_eps=True)
        self.norm = nn.BatchNorm1d(hidden)
        self.vn_mlp = vn_mlp

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(h, edge_index, self.bond_encoder(edge_attr)))


def vn_mlp(hidden: int) -> nn.Sequential:
    """OGB's virtual-node update MLP (hidden -> 2*hidden -> hidden, BatchNorm and ReLU after each)."""
    return nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.BatchNorm1d(2 * hidden), nn.ReLU(),
                         nn.Linear(2 * hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU())


class GIN(nn.Module):
    """GIN graph classifier: ``forward(x, edge_index, edge_attr, batch) -> logits of shape (graphs,)``.

    ``x``: (nodes, 9) long atom features; ``edge_index``: (2, edges) long; ``edge_attr``:
    (edges, 3) long bond features; ``batch``: (nodes,) long graph index of each node, sorted.
    """

    def __init__(self, hidden: int = 300, num_layers: int = 5, dropout: float = 0.5,
                 virtual_node: bool = False, residual: bool = False, width: float = 1.0, out_dim: int = 1,
                 pooling: str = "mean"):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(POOLINGS)}")
        self.pooling = pooling
        h = scaled(hidden, width)
        self.hidden = h
        self.num_layers = num_layers
        self.dropout = float(dropout)
        self.virtual_node = bool(virtual_node)
        self.residual = bool(residual)
        self.atom_encoder = FeatureEncoder(ATOM_FEATURE_DIMS, h)
        # Virtual node (OGB GNN_node_Virtualnode): a per-graph vector, zero at start, added to every
        # node before each layer and updated from the pooled nodes by an MLP between layers.
        self.vn_embedding = nn.Embedding(1, h) if self.virtual_node else None
        if self.vn_embedding is not None:
            nn.init.constant_(self.vn_embedding.weight.data, 0.0)
        self.layers = nn.ModuleList(
            GINLayer(h, vn_mlp(h) if self.virtual_node and i < num_layers - 1 else None)
            for i in range(num_layers))
        self.head = nn.Linear(h, out_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor,
                batch: torch.Tensor) -> torch.Tensor:
        h = self.atom_encoder(x)
        vn = torch.zeros(0)
        if self.vn_embedding is not None:
            num_graphs = int(batch.max()) + 1 if batch.numel() > 0 else 0
            vn = self.vn_embedding(torch.zeros(num_graphs, dtype=torch.long, device=x.device))
        last = self.num_layers - 1
        for i, layer in enumerate(self.layers):
            if self.vn_embedding is not None:
                h = h + vn[batch]
            out = layer(h, edge_index, edge_attr)
            if i < last:
                out = torch.relu(out)
            out = nn.functional.dropout(out, p=self.dropout, training=self.training)
            if self.residual:
                out = out + h
            update = layer.vn_mlp
            if update is not None:
                vn_in = global_add_pool(h, batch) + vn
                vn = nn.functional.dropout(update(vn_in), p=self.dropout, training=self.training)
                if self.residual:
                    vn = vn + vn_in
            h = out
        if self.pooling == "sum":
            pooled = global_add_pool(h, batch)
        elif self.pooling == "max":
            pooled = global_max_pool(h, batch)
        else:
            pooled = global_mean_pool(h, batch)
        return self.head(pooled).view(-1)


def build_gin(config: GINConfig, width: float = 1.0) -> GIN:
    """A GIN from a :class:`GINConfig` with its hidden size scaled by ``width``."""
    return GIN(hidden=config.hidden, num_layers=config.num_layers, dropout=config.dropout,
               virtual_node=config.virtual_node, residual=config.residual, width=width, pooling=config.pooling)
