"""``tcn``: a temporal convolutional network of dilated causal convolutions with weight norm."""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, QuantileHead
from stockml.models.blocks import CausalConvBlock, StaticEmbedding, with_static


class TCNConfig(ModelConfig):
    levels: int = Field(default=3, ge=1)
    kernel_size: int = Field(default=3, ge=2)


class TCNModel(ForecastModel):
    """Residual blocks with dilations 1, 2, 4, ...; the receptive field is
    ``1 + 2 * (kernel - 1) * (2**levels - 1)`` steps. The last step's channels feed the head."""

    config_class = TCNConfig

    def __init__(self, sizes: ModelSizes, config: TCNConfig | None = None):
        cfg = config or TCNConfig()
        super().__init__(sizes, cfg)
        d = cfg.hidden_size
        self.static = StaticEmbedding(sizes, cfg)
        self.blocks = nn.Sequential(
            *(
                CausalConvBlock(sizes.n_features if i == 0 else d, d, cfg.kernel_size, 2**i, cfg.dropout)
                for i in range(cfg.levels)
            )
        )
        self.head = QuantileHead(d + self.static.out_dim, sizes.horizon, sizes.quantiles)

    def forward(self, batch: Batch) -> Tensor:
        h = self.blocks(batch["x"].transpose(1, 2))  # (B, T, F) -> (B, F, T) -> (B, d, T)
        return self.head(with_static(h[:, :, -1], self.static(batch)))
