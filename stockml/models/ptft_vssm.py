"""``ptft_vssm``: the regime-aware ensemble of ``ptft`` and ``vssm``."""

from __future__ import annotations

from statistics import NormalDist

import torch
from pydantic import Field
from torch import Tensor, nn

from stockml.models.base import Batch, ForecastModel, ModelConfig, ModelSizes, median_index, member_config
from stockml.models.ptft import PTFTConfig, PTFTModel
from stockml.models.vssm import VSSMConfig, VSSMModel


class PTFTVSSMConfig(ModelConfig):
    ptft: PTFTConfig = Field(default_factory=PTFTConfig)
    vssm: VSSMConfig = Field(default_factory=VSSMConfig)
    mc_dropout: bool = False  # Monte-Carlo dropout at inference (eval mode only)
    mc_samples: int = Field(default=16, ge=2)
    seed: int = 0  # seeds the MC dropout masks, so MC inference is deterministic
    # The members have their own hidden sizes and dropout; use_embeddings=False here turns theirs off too.


def combine_mc(samples: Tensor, quantiles: tuple[float, ...]) -> Tensor:
    """Pool MC-dropout forecasts ``(S, B, H, Q)`` into one ``(B, H, Q)``.

    Centre: the mean median. Each quantile's offset from it adds, in quadrature, the mean
    aleatoric offset and the epistemic spread (std of the medians across samples, scaled by the
    normal quantile's distance from the median's). Offsets grow away from the median on both sides,
    so the result stays non-crossing, and it is never narrower than the mean aleatoric interval.
    """
    a = median_index(quantiles)
    medians = samples[..., a]  # (S, B, H)
    centre, spread = medians.mean(0), medians.std(0, unbiased=False)
    offsets = (samples - medians[..., None]).mean(0)  # (B, H, Q)
    normal = NormalDist()
    z = torch.tensor(
        [normal.inv_cdf(q) - normal.inv_cdf(quantiles[a]) for q in quantiles], device=samples.device
    )
    # z: (Q,), zero at the median
    total = (offsets.pow(2) + (z * spread[..., None]).pow(2) + 1e-12).sqrt()
    return centre[..., None] + torch.sign(z) * total


class PTFTVSSMModel(ForecastModel):
    """Per horizon, a gate driven by the VSSM's regime probabilities mixes the PTFT and VSSM forecasts:
    ``q = w_ptft * q_ptft + w_vssm * q_vssm`` (a convex mix of non-crossing quantiles is non-crossing).

    With ``mc_dropout`` on, eval-mode forecasts average ``mc_samples`` passes with dropout active
    (see :func:`combine_mc`), which widens the intervals by the epistemic uncertainty.

    ``aux_outputs()``/``get_last_details()``: ``kl``, ``regime_probs`` (B, K), ``regime_logits``,
    ``variable_weights`` (B, T, F), ``attention``, ``gate_weights`` (B, H, 2) = [ptft, vssm].
    """

    config_class = PTFTVSSMConfig
    default_loss = "ptft_vssm"

    def __init__(self, sizes: ModelSizes, config: PTFTVSSMConfig | None = None):
        cfg = config or PTFTVSSMConfig()
        super().__init__(sizes, cfg)
        self.cfg = cfg
        self.ptft = PTFTModel(sizes, member_config(cfg.ptft, cfg))
        self.vssm = VSSMModel(sizes, member_config(cfg.vssm, cfg))
        self.gate = nn.Linear(cfg.vssm.n_regimes, sizes.horizon * 2)
        nn.init.zeros_(self.gate.weight)
        nn.init.zeros_(self.gate.bias)

    def _forward_once(self, batch: Batch) -> Tensor:
        q_ptft, q_vssm = self.ptft(batch), self.vssm(batch)
        probs = self.vssm.last_outputs["regime_probs"]
        weights = torch.softmax(self.gate(probs).view(-1, self.sizes.horizon, 2), -1)  # (B, H*2) -> (B, H, 2)
        self.last_outputs = {**self.ptft.last_outputs, **self.vssm.last_outputs, "gate_weights": weights}
        return weights[..., :1] * q_ptft + weights[..., 1:] * q_vssm

    def forward(self, batch: Batch) -> Tensor:
        if self.training or not self.cfg.mc_dropout:
            return self._forward_once(batch)
        x = batch["x"]
        dropouts = [m for m in self.modules() if isinstance(m, nn.Dropout)]
        with torch.random.fork_rng(devices=[x.device.index or 0] if x.is_cuda else []):
            torch.manual_seed(self.cfg.seed)
            for m in dropouts:
                m.train()
            try:
                samples = torch.stack([self._forward_once(batch) for _ in range(self.cfg.mc_samples)])
            finally:
                for m in dropouts:
                    m.eval()
        return combine_mc(samples, self.sizes.quantiles)  # (S, B, H, Q) -> (B, H, Q)
