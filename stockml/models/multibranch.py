"""``multibranch``: one encoder per feature family, fused before the head.

The branches are the families :func:`stockml.features.feature_groups` finds in the frame (recorded in
``ModelSizes.feature_groups``): ``price``, ``volume``, ``volatility``, ``indicator``, ``market``, ``macro``,
``sentiment`` and ``other``, each only when the frame has columns of it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import GRN, StaticEmbedding


class MultiBranchConfig(ModelConfig):
    pass


def feature_families(sizes: ModelSizes) -> dict[str, list[int]]:
    """Branch name -> columns of ``x``: ``sizes.feature_groups``, with columns no group names added to
    ``"other"`` (none is dropped). Without groups (sizes built by hand, bundles saved before sizes carried
    them) the columns are split in two halves named ``price`` and ``indicator``, as those bundles were
    trained."""
    if sizes.feature_groups:
        families = {name: list(cols) for name, cols in sizes.feature_groups.items()}
        named = {c for cols in families.values() for c in cols}
        rest = [c for c in range(sizes.n_features) if c not in named]
        if rest:
            families.setdefault("other", []).extend(rest)
        return families
    half = sizes.n_features // 2
    if half == 0:
        return {"all": list(range(sizes.n_features))}
    return {"price": list(range(half)), "indicator": list(range(half, sizes.n_features))}


class MultiBranchModel(ForecastModel):
    """Each family of columns gets its own LSTM; the final states and the static embedding are
    concatenated and fused by a gated residual network before the quantile head.

    Branches and their columns: :func:`feature_families`.
    """

    config_class = MultiBranchConfig

    def __init__(self, sizes: ModelSizes, config: MultiBranchConfig | None = None):
        cfg = config or MultiBranchConfig()
        super().__init__(sizes, cfg)
        d = cfg.hidden_size
        self.families = feature_families(sizes)
        for name, cols in self.families.items():
            self.register_buffer(f"cols_{name}", torch.tensor(cols, dtype=torch.long), persistent=False)
        self.branches = nn.ModuleDict(
            {n: nn.LSTM(len(c), d, batch_first=True) for n, c in self.families.items()}
        )
        self.static = StaticEmbedding(sizes, cfg)
        fused_in = d * len(self.families) + self.static.out_dim
        self.fuse = GRN(fused_in, d, d, cfg.dropout)
        self.head = QuantileHead(d, sizes.horizon, sizes.quantiles)

    def forward(self, batch: Batch) -> Tensor:
        x = batch["x"]
        states = []
        for name, rnn in self.branches.items():
            out, _ = rnn(x.index_select(-1, getattr(self, f"cols_{name}")))  # (B, T, F_g) -> (B, T, d)
            states.append(out[:, -1])
        static = self.static(batch)
        if static is not None:
            states.append(static)
        return self.head(self.fuse(torch.cat(states, dim=-1)))
