"""``multibranch``: one encoder per feature family (price vs indicators), fused before the head."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import GRN, StaticEmbedding


class MultiBranchConfig(ModelConfig):
    pass


def feature_families(sizes: ModelSizes) -> dict[str, list[int]]:
    """``sizes.feature_groups``, or the columns split in two halves (price first, then indicators)."""
    if sizes.feature_groups:
        return {name: list(cols) for name, cols in sizes.feature_groups.items()}
    half = sizes.n_features // 2
    if half == 0:
        return {"all": list(range(sizes.n_features))}
    return {"price": list(range(half)), "indicator": list(range(half, sizes.n_features))}


class MultiBranchModel(ForecastModel):
    """Each family of columns gets its own LSTM; the final states and the static embedding are
    concatenated and fused by a gated residual network before the quantile head.

    Family names and columns come from ``ModelSizes.feature_groups`` (default: two halves).
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
