"""``attention_lstm``: an LSTM whose outputs are pooled by additive attention over time."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import StaticEmbedding, with_static


class AttentionLSTMConfig(ModelConfig):
    num_layers: int = Field(default=1, ge=1)


class AttentionLSTMModel(ForecastModel):
    """LSTM + Bahdanau attention: the last state queries all steps; context + last state -> head.

    ``get_last_details()["attention"]`` is ``(B, T)``, summing to 1 over T.
    """

    config_class = AttentionLSTMConfig

    def __init__(self, sizes: ModelSizes, config: AttentionLSTMConfig | None = None):
        cfg = config or AttentionLSTMConfig()
        super().__init__(sizes, cfg)
        d = cfg.hidden_size
        self.static = StaticEmbedding(sizes, cfg)
        drop_between = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.rnn = nn.LSTM(sizes.n_features, d, cfg.num_layers, batch_first=True, dropout=drop_between)
        self.w_keys = nn.Linear(d, d, bias=False)
        self.w_query = nn.Linear(d, d)
        self.score = nn.Linear(d, 1, bias=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = QuantileHead(2 * d + self.static.out_dim, sizes.horizon, sizes.quantiles)

    def forward(self, batch: Batch) -> Tensor:
        out, _ = self.rnn(batch["x"])  # (B, T, d)
        last = out[:, -1]
        energy = torch.tanh(self.w_keys(out) + self.w_query(last)[:, None])  # (B, T, d)
        attn = torch.softmax(self.score(energy).squeeze(-1), dim=-1)  # (B, T, 1) -> (B, T)
        context = (attn[..., None] * out).sum(dim=1)  # (B, d)
        self.last_outputs = {"attention": attn}
        h = self.drop(torch.cat([context, last], dim=-1))
        return self.head(with_static(h, self.static(batch)))
