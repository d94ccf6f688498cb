"""``lstm``: a stacked LSTM over the window; its last hidden state feeds the quantile head."""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import StaticEmbedding, with_static


class LSTMConfig(ModelConfig):
    num_layers: int = Field(default=1, ge=1)


class LSTMModel(ForecastModel):
    """LSTM encoder; the last step's hidden state (plus symbol/sector embeddings) -> quantiles."""

    config_class = LSTMConfig

    def __init__(self, sizes: ModelSizes, config: LSTMConfig | None = None):
        cfg = config or LSTMConfig()
        super().__init__(sizes, cfg)
        self.static = StaticEmbedding(sizes, cfg)
        drop_between = cfg.dropout if cfg.num_layers > 1 else 0.0
        self.rnn = nn.LSTM(
            sizes.n_features, cfg.hidden_size, cfg.num_layers, batch_first=True, dropout=drop_between
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = QuantileHead(cfg.hidden_size + self.static.out_dim, sizes.horizon, sizes.quantiles)

    def forward(self, batch: Batch) -> Tensor:
        out, _ = self.rnn(batch["x"])  # (B, T, hidden)
        h = self.drop(out[:, -1])
        return self.head(with_static(h, self.static(batch)))
