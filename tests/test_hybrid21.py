"""``hybrid21``: group encoders, the fusion gate and its diagnostics, the joint loss, sizing."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from feature_helpers import synthetic_market
from model_helpers import one_torch_thread  # noqa: F401 (autouse fixture)
from pydantic import ValidationError
from report_helpers import synthetic_evaluation
from torch.nn import functional as F

from stockml.evaluation.run import EvalRun, fitted_configs
from stockml.features import FeatureConfig, build_feature_frame
from stockml.losses import PinballLoss
from stockml.models import ModelSizes, build_model
from stockml.models.groups import correlation_groups
from stockml.models.hybrid21 import SOURCES, Hybrid21Config, Hybrid21Model, group_of
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.walkforward import new_model, run_walk_forward

SIZES = ModelSizes(n_features=6, horizon=3, n_symbols=12, n_sectors=20)
PINBALL = PinballLoss(SIZES.quantiles)


def build(**config) -> Hybrid21Model:
    torch.manual_seed(0)
    model = build_model("hybrid21", SIZES, {"size": "tiny", **config})
    assert isinstance(model, Hybrid21Model)
    return model


def cross_section(seed: int = 0, d: int = 2, n: int = 6, t: int = 10) -> dict[str, torch.Tensor]:
    """D dates x N symbols; sectors 1, 1, 2, 2, 0, 9 (9 folds onto group 2 with 8 groups)."""
    g = torch.Generator().manual_seed(seed)
    node_mask = torch.ones(d, n, dtype=torch.bool)
    node_mask[0, 1] = False
    return {
        "x": torch.randn(d, n, t, SIZES.n_features, generator=g),
        "symbol": torch.arange(1, n + 1).repeat(d, 1),
        "sector": torch.tensor([1, 1, 2, 2, 0, 9]).repeat(d, 1),
        "target": torch.randn(d, n, SIZES.horizon, generator=g),
        "node_mask": node_mask,
    }


def plain(seed: int = 0, b: int = 24, t: int = 10) -> dict[str, torch.Tensor]:
    """Rows of three dates, random sectors."""
    g = torch.Generator().manual_seed(seed)
    return {
        "x": torch.randn(b, t, SIZES.n_features, generator=g),
        "symbol": torch.randint(0, 12, (b,), generator=g),
        "sector": torch.randint(0, 20, (b,), generator=g),
        "date": torch.arange(b) % 3,
        "target": torch.randn(b, SIZES.horizon, generator=g),
    }


def test_group_rule():
    sector = torch.tensor([0, 1, 7, 8, 15, 16])
    assert group_of(sector, 8).tolist() == [0, 1, 7, 1, 1, 2]


def test_shapes_and_ordered_quantiles():
    model = build().eval()
    out = model(cross_section())
    assert out.shape == (2, 6, SIZES.horizon, SIZES.n_quantiles)
    assert (out.diff(dim=-1) >= 0).all()
    out = model(plain())
    assert out.shape == (24, SIZES.horizon, SIZES.n_quantiles)
    assert (out.diff(dim=-1) >= 0).all()


def test_details_keys_shapes_and_equal_start():
    model = build().eval()
    model(plain())
    details = model.get_last_details()
    assert set(details) == {"gate_weights", "trend_prob", "vol_log_scale", "group", "sources"}
    assert details["gate_weights"].shape == (24, 3)
    assert details["trend_prob"].shape == details["vol_log_scale"].shape == (24, SIZES.horizon)
    assert details["sources"].shape == (24, 3, 8)
    assert torch.equal(details["group"], group_of(plain()["sector"], 8))
    assert not any(v.requires_grad for v in details.values())
    assert torch.allclose(details["gate_weights"], torch.full((24, 3), 1 / 3))  # the gate starts equal
    assert ((details["trend_prob"] > 0) & (details["trend_prob"] < 1)).all()


def test_each_group_has_its_own_encoder():
    model = build().eval()
    batch = plain()
    model(batch)
    before, group = model.last_outputs["sources"][:, 0].detach(), model.last_outputs["group"]
    assert len(set(group.tolist())) >= 3
    target = int(group[0])
    with torch.no_grad():
        for p in model.group_encoders[target].parameters():
            p.add_(0.5)
    model(batch)
    after = model.last_outputs["sources"][:, 0].detach()
    changed = (after - before).abs().amax(-1) > 1e-6
    assert torch.equal(changed, group == target)


def test_group_context_is_the_masked_mean_of_the_date_and_group():
    model = build().eval()
    batch = cross_section()
    model(batch)
    own, ctx = model.last_outputs["sources"][:, 0], model.last_outputs["sources"][:, 1]
    own, ctx = own.view(2, 6, -1), ctx.view(2, 6, -1)  # (D*N, D') -> (D, N, D')
    # date 0: symbol 1 is masked, so symbol 0 is alone in group 1; date 1: symbols 0 and 1
    assert torch.allclose(ctx[0, 0], own[0, 0])
    assert torch.allclose(ctx[1, 0], (own[1, 0] + own[1, 1]) / 2)
    assert torch.allclose(ctx[1, 2], (own[1, 2] + own[1, 3] + own[1, 5]) / 3)  # sector 9 -> group 2
    out = model(batch)
    noisy = {**batch, "x": batch["x"].clone()}
    noisy["x"][0, 1] += 5.0  # the masked row
    assert torch.equal(out[batch["node_mask"]], model(noisy)[batch["node_mask"]])


@torch.no_grad()
def _loss_parts(model: Hybrid21Model, batch: dict) -> tuple[float, float, float]:
    """Pinball, BCE of the trend head and Gaussian NLL of the vol head, from the last forward's details."""
    pred = model(batch).reshape(-1, SIZES.horizon, SIZES.n_quantiles)  # (D, N, H, Q) -> (D*N, H, Q)
    valid = batch["node_mask"].reshape(-1, 1).expand(-1, SIZES.horizon)
    y = batch["target"].reshape(-1, SIZES.horizon)
    d = model.get_last_details()
    bce = F.binary_cross_entropy(d["trend_prob"], (y > 0).float(), reduction="none")[valid].mean()
    log_s = d["vol_log_scale"]
    nll = (log_s + 0.5 * y.pow(2) * torch.exp(-2 * log_s))[valid].mean()
    return float(PINBALL(pred, y, mask=valid)), float(bce), float(nll)


def test_loss_is_pinball_plus_weighted_aux_terms():
    batch = cross_section()
    model = build(trend_weight=0.3, vol_weight=0.2).eval()
    pinball, bce, nll = _loss_parts(model, batch)
    assert bce > 0.1 and nll != 0.0
    with torch.no_grad():
        total = float(model.loss(batch, PINBALL))
    assert total == pytest.approx(pinball + 0.3 * bce + 0.2 * nll, rel=1e-5)


def _zero(pred, target, **_):
    return pred.sum() * 0.0


@pytest.mark.parametrize(
    ("weights", "criterion", "gets_grad"),
    [
        ((0.0, 0.0), PINBALL, "head"),
        ((1.0, 0.0), _zero, "trend"),
        ((0.0, 1.0), _zero, "vol"),
    ],
)
def test_every_term_has_gradient_and_weight_zero_skips_it(weights, criterion, gets_grad):
    model = build(trend_weight=weights[0], vol_weight=weights[1]).train()
    model.loss(cross_section(), criterion).backward()
    heads = {"head": model.head.proj.weight, "trend": model.trend.weight, "vol": model.vol.weight}
    for name, weight in heads.items():
        if name == gets_grad:
            assert weight.grad is not None and weight.grad.abs().sum() > 0, name
        else:  # a skipped term is not in the graph at all; the zero criterion gives exact zeros
            assert weight.grad is None or not weight.grad.any(), name
    # and every term trains the encoders below the heads
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.group_encoders.parameters())
    assert model.global_encoder.weight_ih_l0.grad.abs().sum() > 0


def test_weight_table_averages_eval_forwards_and_resets_on_mode_switch():
    model = build().eval()
    with torch.no_grad():
        model.gate.weight.normal_(0.0, 1.0)  # weights that differ between rows
    assert model.weight_table() == {}
    a, b = cross_section(0), cross_section(1)
    seen = []
    for batch in (a, b):
        model(batch)
        seen.append(model.get_last_details()["gate_weights"][batch["node_mask"].reshape(-1)])
    expected = torch.cat(seen).mean(0)  # masked rows left out
    table = model.weight_table()
    assert list(table) == list(SOURCES)
    assert np.allclose([table[s][0] for s in SOURCES], expected.numpy(), atol=1e-6)
    assert sum(v[0] for v in table.values()) == pytest.approx(1.0)
    assert not np.allclose(expected.numpy(), 1 / 3, atol=1e-3)
    model.train()
    assert model.weight_table() == {}
    model(a)  # training-mode forwards are not counted
    assert model.weight_table() == {}
    model.eval()
    model(b)
    assert np.allclose([model.weight_table()[s][0] for s in SOURCES], seen[1].mean(0).numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("n_train", "size", "hidden"),
    [(5_000, "tiny", 8), (19_999, "tiny", 8), (20_000, "small", 16), (150_000, "medium", 32),
     (500_000, "large", 64)],
)  # fmt: skip
def test_sized_resolves_auto_from_training_samples(n_train, size, hidden):
    cfg = Hybrid21Model.sized(Hybrid21Config(), n_train)
    assert (cfg.size, cfg.hidden_size) == (size, hidden)


def test_explicit_size_is_kept_and_sets_the_width():
    cfg = Hybrid21Config(size="medium")
    assert cfg.hidden_size == 32
    assert Hybrid21Model.sized(cfg, 1_000) == cfg
    with pytest.raises(ValidationError, match="hidden_size 16"):
        Hybrid21Config(size="small", hidden_size=8)
    assert Hybrid21Config(hidden_size=12).hidden_size == 12  # unresolved auto: as given


class _Sized(SimpleNamespace):
    def __init__(self, arrays: SimpleNamespace, n: int) -> None:
        super().__init__(arrays=arrays, rows=np.arange(n))
        self._n = n

    def __len__(self) -> int:
        return self._n


def _windows(n_days: int, factors: dict[int, int], seed: int = 0) -> _Sized:
    """Training windows stand-in: symbol ids -> the factor that drives their horizon-1 target."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(3, n_days))
    symbol, day, target = [], [], []
    for sid, factor in factors.items():
        days = np.arange(n_days) if sid != 7 else np.arange(20)  # symbol 7: too few days
        noise = rng.normal(size=len(days))
        symbol.append(np.full(len(days), sid))
        day.append(days)
        target.append(common[factor, days] + 0.5 * noise)
    t = np.concatenate(target)
    arrays = SimpleNamespace(
        symbol=np.concatenate(symbol), day=np.concatenate(day), target=np.stack([t, t], axis=1)
    )
    return _Sized(arrays, len(t))


@pytest.mark.parametrize("configs", [{}, {"hybrid21": {"vol_weight": 0.0}}, {"hybrid21": {"size": "large"}}])
def test_new_model_sizes_a_model_that_can_size_itself(configs):
    cfg = EvalConfig(models=("hybrid21", "lstm"), model_configs=configs)
    train = _Sized(SimpleNamespace(), 50_000)
    model = new_model("hybrid21", SIZES, cfg, seed=0, train=train)
    explicit = configs.get("hybrid21", {}).get("size")
    assert model.config.size == (explicit or "small")
    assert model.group_encoders[0].hidden_size == model.config.hidden_size
    assert new_model("hybrid21", SIZES, cfg, seed=0).config.size == (explicit or "auto")
    assert new_model("lstm", SIZES, cfg, seed=0, train=train).config.hidden_size == 32  # no fit_config


def test_correlation_groups_cluster_symbols_that_move_together():
    """Symbols 1-3 follow factor 0, 4-6 factor 1, 8-9 factor 2; symbol 7 has 20 days (too few): 0."""
    factors = {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 1, 7: 0, 8: 2, 9: 2}
    w = _windows(250, factors)
    groups = correlation_groups(w.arrays.symbol, w.arrays.day, w.arrays.target[:, 0], 11, 3)
    assert len(groups) == 11 and groups[0] == groups[7] == groups[10] == 0
    assert (
        groups[1] == groups[2] == groups[3] and groups[4] == groups[5] == groups[6] and groups[8] == groups[9]
    )
    assert len({groups[1], groups[4], groups[8]}) == 3 and set(groups) == {0, 1, 2, 3}


def test_fit_config_sets_correlation_groups_and_forward_routes_by_them():
    factors = {1: 0, 2: 0, 3: 1, 4: 1}
    cfg = Hybrid21Model.fit_config(
        Hybrid21Config(group_by="correlation", max_groups=3), _windows(200, factors)
    )
    assert cfg.size == "tiny" and cfg.symbol_groups[1] == cfg.symbol_groups[2] != cfg.symbol_groups[3]
    assert cfg.symbol_groups[3] == cfg.symbol_groups[4] and cfg.symbol_groups[0] == 0
    assert Hybrid21Model.fit_config(Hybrid21Config(), _windows(200, factors)).symbol_groups == ()  # sector
    model = build_model("hybrid21", SIZES, cfg.model_dump()).eval()
    batch = {
        "x": torch.randn(6, 5, SIZES.n_features),
        "symbol": torch.tensor([1, 2, 3, 4, 0, 11]),  # 0 and 11 (beyond the fitted vocabulary): unknown
        "sector": torch.tensor([5, 5, 5, 5, 5, 5]),  # the same sector: only the symbols tell them apart
        "date": torch.zeros(6, dtype=torch.long),
    }
    model(batch)
    group = model.get_last_details()["group"].tolist()
    assert group == [cfg.symbol_groups[1]] * 2 + [cfg.symbol_groups[3]] * 2 + [0, 0]


def test_walk_forward_records_the_size_and_the_gate_weights():
    features = build_feature_frame(
        synthetic_market(n_symbols=4, n_days=300, seed=3), FeatureConfig(horizon=2)
    )
    cfg = EvalConfig(
        models=("hybrid21",), horizon=2, lookback=10, folds=1, test_days=20, valid_days=20,
        min_train_days=150, baselines=("random_walk",),
    )  # fmt: skip
    train = TrainConfig(max_epochs=1, max_batches_per_epoch=2, progress=False, device="cpu")
    (out,) = run_walk_forward(
        features.frame, features.feature_columns, features.label_columns, cfg, train,
        features.sector_vocab.size,
    )  # fmt: skip
    fitted = out.fitted["hybrid21"]
    assert (fitted.config.size, fitted.config.hidden_size) == ("tiny", 8)  # a few hundred samples
    weights = out.weights["hybrid21"]
    assert list(weights) == list(SOURCES)
    assert sum(w[0] for w in weights.values()) == pytest.approx(1.0)
    clone = pickle.loads(pickle.dumps(out))  # rebuilt from the recorded (resolved) config
    assert clone.fitted["hybrid21"].config == fitted.config
    # the MLflow run records the size resolved (its params beside the requested "auto")
    run = EvalRun(features, FeatureConfig(horizon=2), cfg, train, [out], synthetic_evaluation())
    assert fitted_configs(run) == {"hybrid21": {"size": "tiny", "hidden_size": 8}}
