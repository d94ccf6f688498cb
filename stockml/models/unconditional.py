"""``unconditional``: the training targets' empirical quantiles, the same for every row.

With volatility-standardised targets (the default) the mapping back multiplies them by each row's
``sigma_t * sqrt(h)``, so this model is filtered historical simulation, the ``ewma_vol`` baseline as a
model: it can be registered, served and, above all, be an ensemble member next to models that know more.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, target_quantiles


class UnconditionalConfig(ModelConfig):
    pass


class UnconditionalModel(ForecastModel):
    """Forecasts the (H, Q) quantiles of its training rows' targets (per horizon, rows with a known target)
    for any input. ``fits_whole``: fitted in one call; the quantiles are a buffer of the state dict."""

    config_class = UnconditionalConfig
    fits_whole: ClassVar[bool] = True
    levels: Tensor

    def __init__(self, sizes: ModelSizes, config: UnconditionalConfig | None = None):
        super().__init__(sizes, config or UnconditionalConfig())
        self.register_buffer("levels", torch.full((sizes.horizon, sizes.n_quantiles), torch.nan))

    @property
    def window_steps(self) -> int:
        return 1

    def fit_whole(self, train: Batch, valid: Batch | None, seed: int) -> list[dict[str, float]]:
        known = torch.where(train["mask"].bool(), train["target"].double(), torch.nan)
        self.levels.copy_(target_quantiles(known.cpu().numpy(), self.sizes.quantiles))  # (H, Q)
        return [{"epoch": 0, "train_loss": float("nan")}]

    def forward(self, batch: Batch) -> Tensor:
        if torch.isnan(self.levels).any():
            raise RuntimeError("unconditional model is not fitted (fit_whole) or loaded (load_state_dict)")
        x = batch["x"]
        return self.levels.to(x.device).expand(x.shape[0], -1, -1).clone()  # (H, Q) -> (B, H, Q)
