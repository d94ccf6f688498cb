"""``bilstm``: a bidirectional LSTM; both directions' summaries of the whole window feed the head."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import StaticEmbedding, with_static


class BiLSTMConfig(ModelConfig):
    num_layers: int = Field(default=1, ge=1)


class BiLSTMModel(ForecastModel):
    """Bidirectional LSTM over the (past-only) window.

    The forward direction's state at the last step and the backward direction's state at the first
    step have each read the whole window; their concatenation feeds the quantile head.
    """

    config_class = BiLSTMConfig

    def __init__(self, sizes: ModelSizes, config: BiLSTMConfig | None = None):
        cfg = config or BiLSTMConfig()
        super().__init__(sizes, cfg)
        self.hidden = cfg.hidden_size
        self.static = StaticEmbedding(sizes, cfg)
        drop_between = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.rnn = nn.LSTM(
            sizes.n_features, cfg.hidden_size, cfg.num_layers,
            batch_first=True, dropout=drop_between, bidirectional=True,
        )  # fmt: skip
        self.drop = nn.Dropout(cfg.dropout)
        self.head = QuantileHead(2 * cfg.hidden_size + self.static.out_dim, sizes.horizon, sizes.quantiles)

    def forward(self, batch: Batch) -> Tensor:
        out, _ = self.rnn(batch["x"])  # (B, T, 2*hidden): [forward | backward]
        h = torch.cat([out[:, -1, : self.hidden], out[:, 0, self.hidden :]], dim=-1)
        return self.head(with_static(self.drop(h), self.static(batch)))
