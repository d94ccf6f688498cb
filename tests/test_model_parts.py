"""What individual models and blocks expose: selection weights, regimes, gates, MC dropout, diffusion."""

from __future__ import annotations

import pytest
import torch
from model_helpers import make_batch as learnable_batch
from model_helpers import one_torch_thread  # noqa: F401 (autouse fixture)

from stockml.losses import PinballLoss
from stockml.models import ModelSizes, build_model
from stockml.models.base import QuantileHead, monotone_quantiles
from stockml.models.blocks import CausalConvBlock
from stockml.models.diffusion import noise_schedule
from stockml.models.ptft_vssm import combine_mc

SIZES = ModelSizes(n_features=8, horizon=5, n_symbols=10, n_sectors=4)


def make_batch(seed: int = 0, b: int = 32, t: int = 20) -> dict[str, torch.Tensor]:
    return learnable_batch(seed, b, t, SIZES)


def build(name: str, config: dict | None = None, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(name, SIZES, config)


def test_monotone_quantiles_never_cross_even_for_wild_inputs():
    raw = torch.randn(64, 5, 7) * 100
    out = monotone_quantiles(raw, anchor=3)
    assert (out.diff(dim=-1) >= 0).all()
    assert torch.equal(out[..., 3], raw[..., 3])  # the anchor is the raw median
    head = QuantileHead(4, horizon=5, quantiles=(0.05, 0.5, 0.95))
    assert head(torch.randn(2, 4)).shape == (2, 5, 3)


def test_causal_conv_block_does_not_look_ahead():
    torch.manual_seed(0)
    block = CausalConvBlock(3, 6, kernel=3, dilation=2, dropout=0.0)
    x = torch.randn(2, 3, 12)
    later = x.clone()
    later[..., 8:] += 5.0
    assert torch.equal(block(x)[..., :8], block(later)[..., :8])
    assert not torch.allclose(block(x)[..., 8:], block(later)[..., 8:])


def test_ptft_exposes_variable_selection_weights():
    model = build("ptft").eval()
    model(make_batch(b=6))
    details = model.get_last_details()
    weights = details["variable_weights"]
    assert weights.shape == (6, 20, 8)
    assert torch.allclose(weights.sum(-1), torch.ones(6, 20), atol=1e-5)
    assert details["static_weights"].shape == (6, 2)
    assert details["attention"].shape == (6, 5, 25)
    importance = model.feature_importance()
    assert importance.shape == (8,)
    assert torch.isclose(importance.sum(), torch.tensor(1.0), atol=1e-5)


def test_ptft_attention_is_causal_over_horizon_tokens():
    model = build("ptft").eval()
    model(make_batch(b=2))
    attn = model.get_last_details()["attention"]  # (B, H, T + H)
    for h in range(5):
        assert torch.all(attn[:, h, 20 + h + 1 :] == 0)


def test_vssm_exposes_regime_probabilities_and_kl():
    model = build("vssm", {"n_regimes": 3}).eval()
    model(make_batch(b=6))
    aux = model.aux_outputs()
    assert aux["regime_probs"].shape == (6, 3)
    assert torch.allclose(aux["regime_probs"].sum(-1), torch.ones(6), atol=1e-5)
    assert aux["kl"].dim() == 0 and aux["kl"].item() >= 0 and aux["kl"].requires_grad
    assert aux["l2"].item() > 0


def test_vssm_samples_its_latent_path_only_while_training():
    model = build("vssm")
    batch = make_batch(b=4)
    model.train()
    assert not torch.equal(model(batch), model(batch))  # reparameterised samples
    model.eval()
    assert torch.equal(model(batch), model(batch))  # posterior mean


def test_hybrid_gate_details_and_disabled_branch():
    config = {
        "branches": {"diffusion": {"enabled": False}, "graph": {"weight": 3.0}},
        "temperature": 2.0,
    }
    model = build("hybrid", config).eval()
    model(make_batch(b=6))
    details = model.get_last_details()
    weights, logits = details["gate_weights"], details["gate_logits"]
    names = model.expert_names
    assert names == ["trunk", "ptft", "vssm", "diffusion", "graph", "regime"]
    assert weights.shape == logits.shape == (6, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(6), atol=1e-6)
    assert torch.all(weights[:, names.index("diffusion")] == 0)
    assert "diffusion" not in model.members
    # the gate starts at zero, so the weights are the priors ** (1 / temperature), normalised
    ratio = weights[:, names.index("graph")] / weights[:, names.index("ptft")]
    assert torch.allclose(ratio, torch.full((6,), 3.0**0.5), atol=1e-5)
    assert details["regime_probs"].shape == (6, 4)
    assert "kl" in details


def test_hybrid_trains_its_diffusion_branch():
    model = build("hybrid")
    model.loss(make_batch(b=8), lambda pred, target, **_: pred.sum() * 0).backward()
    grads = [p.grad for p in model.members["diffusion"].denoiser.parameters()]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_ptft_vssm_gate_and_details():
    model = build("ptft_vssm").eval()
    model(make_batch(b=6))
    details = model.get_last_details()
    assert details["gate_weights"].shape == (6, 5, 2)
    assert torch.allclose(details["gate_weights"].sum(-1), torch.ones(6, 5), atol=1e-6)
    assert {"kl", "regime_probs", "variable_weights"} <= set(details)


def test_mc_dropout_widens_intervals():
    batch = make_batch(b=32)
    plain = build("ptft_vssm")
    optimiser = torch.optim.Adam(plain.parameters(), lr=1e-2)
    for _ in range(40):  # train a little, so the aleatoric bands start to shrink
        optimiser.zero_grad()
        plain.loss(batch, PinballLoss(SIZES.quantiles)).backward()
        optimiser.step()
    plain.eval()
    mc = build("ptft_vssm", {"mc_dropout": True, "mc_samples": 8}).eval()
    mc.load_state_dict(plain.state_dict())
    with torch.no_grad():
        q_plain, q_mc = plain(batch), mc(batch)
        assert torch.equal(q_mc, mc(batch))  # seeded: MC inference is deterministic
    width_plain = (q_plain[..., -1] - q_plain[..., 0]).mean()
    width_mc = (q_mc[..., -1] - q_mc[..., 0]).mean()
    print(f"5-95 width: plain {width_plain:.4f}, MC dropout {width_mc:.4f}")
    assert width_mc > 1.01 * width_plain
    assert (q_mc.diff(dim=-1) >= 0).all()
    assert not any(m.training for m in mc.modules())  # dropout switched back off


def test_combine_mc_adds_epistemic_spread():
    quantiles = (0.05, 0.5, 0.95)
    same = torch.tensor([-1.0, 0.0, 1.0]).expand(4, 2, 3, 3)  # 4 identical samples
    assert torch.allclose(combine_mc(same, quantiles), same[0], atol=1e-5)
    shifted = same + torch.arange(4.0).view(4, 1, 1, 1)  # medians 0..3: std sqrt(1.25)
    out = combine_mc(shifted, quantiles)
    assert torch.allclose(out[..., 1], torch.full((2, 3), 1.5))
    expected = (1.0 + (1.6449 * 1.25**0.5) ** 2) ** 0.5
    assert torch.allclose(out[..., 2] - out[..., 1], torch.full((2, 3), expected), atol=1e-3)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_noise_schedules_end_near_pure_noise(kind):
    betas = noise_schedule(kind, 50)
    alpha_bar = torch.cumprod(1 - betas, 0)
    assert betas.shape == (50,) and torch.all((betas > 0) & (betas < 1))
    assert torch.all(alpha_bar.diff() < 0)
    assert alpha_bar[-1] < 0.01


def test_diffusion_sampling_is_seeded():
    batch = make_batch(b=4)
    model = build("diffusion", {"n_steps": 10, "n_samples": 16}).eval()
    other = build("diffusion", {"n_steps": 10, "n_samples": 16, "seed": 1}).eval()
    other.load_state_dict(model.state_dict())
    assert torch.equal(model(batch), model(batch))
    assert not torch.equal(model(batch), other(batch))
    assert model.sample(batch).shape == (4, 16, 5)


def test_diffusion_learns_the_conditional_path():
    batch = make_batch(b=64)
    model = build("diffusion", {"schedule": "linear"})
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        optimiser.zero_grad()
        model.loss(batch).backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        q = model(batch)
    y = batch["target"]
    error = (q[..., 3] - y).abs().mean()
    no_skill = (y - y.mean(0)).abs().mean()
    assert error < 0.35 * no_skill
    inside = ((y >= q[..., 0]) & (y <= q[..., -1])).float().mean()
    assert inside > 0.6  # the 5-95 band is a real band, not a point
