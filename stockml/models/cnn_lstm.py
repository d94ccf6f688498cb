"""``cnn_lstm``: causal 1-D convolutions extract local patterns, an LSTM reads them in order."""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import StaticEmbedding, with_static


class CNNLSTMConfig(ModelConfig):
    conv_layers: int = Field(default=2, ge=1)
    kernel_size: int = Field(default=3, ge=1)


class CNNLSTMModel(ForecastModel):
    """Conv1d stack (left-padded, so step t sees steps <= t) -> LSTM -> last state -> head."""

    config_class = CNNLSTMConfig

    def __init__(self, sizes: ModelSizes, config: CNNLSTMConfig | None = None):
        cfg = config or CNNLSTMConfig()
        super().__init__(sizes, cfg)
        d = cfg.hidden_size
        self.pad = cfg.kernel_size - 1
        self.static = StaticEmbedding(sizes, cfg)
        self.convs = nn.ModuleList(
            nn.Conv1d(sizes.n_features if i == 0 else d, d, cfg.kernel_size) for i in range(cfg.conv_layers)
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.rnn = nn.LSTM(d, d, batch_first=True)
        self.head = QuantileHead(d + self.static.out_dim, sizes.horizon, sizes.quantiles)

    def forward(self, batch: Batch) -> Tensor:
        h = batch["x"].transpose(1, 2)  # (B, T, F) -> (B, F, T)
        for conv in self.convs:
            h = self.drop(F.relu(conv(F.pad(h, (self.pad, 0)))))
        out, _ = self.rnn(h.transpose(1, 2))  # (B, d, T) -> (B, T, d)
        return self.head(with_static(out[:, -1], self.static(batch)))
