"""One contract test over every registered model (CPU, tiny sizes, seeded)."""

from __future__ import annotations

import io
from statistics import NormalDist

import numpy as np
import pytest
import torch
from model_helpers import make_batch as learnable_batch
from model_helpers import one_torch_thread  # noqa: F401 (autouse fixture)
from pydantic import ValidationError

from stockml.losses import LOSSES, PinballLoss
from stockml.models import MODELS, ForecastModel, ModelSizes, build_model
from stockml.training.trainer import predict
from stockml.training.windows import WindowArrays, WindowDataset

SIZES = ModelSizes(n_features=8, horizon=5, n_symbols=10, n_sectors=4)
NAMES = sorted(MODELS)
EXPECTED = {
    "lstm", "bilstm", "attention_lstm", "tcn", "transformer", "cnn_lstm", "multibranch",
    "ptft", "vssm", "ptft_vssm", "hybrid", "diffusion", "graph", "lightgbm", "unconditional", "ensemble",
    "hybrid21",
    "distilled",
}  # fmt: skip
# Trained by the gradient trainer alone (not fitted in one call, not an ensemble of such models).
GRADIENT = [n for n in NAMES if not MODELS[n].fits_whole and n != "ensemble"]
CONSTANT = {"unconditional"}  # the training quantiles: no input, no randomness, by design


def make_batch(seed: int = 0, b: int = 32, t: int = 20, sizes: ModelSizes = SIZES) -> dict[str, torch.Tensor]:
    """A learnable problem (:func:`model_helpers.make_batch`)."""
    return learnable_batch(seed, b, t, sizes)


def inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The batch without its target: forward must not need it."""
    return {k: v for k, v in batch.items() if k != "target"}


TEST_CONFIGS: dict[str, dict] = {  # small and quick where the defaults are slow
    "lightgbm": {"n_estimators": 30, "min_child_samples": 10},
    "ensemble": {"member_configs": {"lightgbm": {"n_estimators": 30, "min_child_samples": 10}}},
    # here the teacher is untrained, so imitating it would pull towards noise: the student's own objective
    # (tests/test_distilled.py trains a teacher first and checks the imitation term)
    "distilled": {"alpha": 0.0},
}


def _fits_whole_parts(model: ForecastModel) -> list[ForecastModel]:
    return [m for m in model.modules() if isinstance(m, ForecastModel) and m.fits_whole]


def build(name: str, seed: int = 0, sizes: ModelSizes = SIZES, config: dict | None = None) -> ForecastModel:
    """A seeded model. Parts fitted in one call (``fits_whole``: gradient boosting, the unconditional
    quantiles; also inside an ensemble) come fitted on a batch whose targets depend on the last step and
    the symbol, so they have something to forecast with."""
    torch.manual_seed(seed)
    model = build_model(name, sizes, {**TEST_CONFIGS.get(name, {}), **(config or {})})
    for part in _fits_whole_parts(model):
        batch = make_batch(seed=99, b=400, sizes=sizes)
        batch["target"] = batch["target"] + 0.5 * (batch["symbol"] % 3)[:, None]
        part.fit_whole({**batch, "mask": torch.ones_like(batch["target"], dtype=torch.bool)}, None, seed)
    return model


def test_registry_names_and_errors():
    assert set(MODELS) == EXPECTED
    with pytest.raises(KeyError, match="registered models: attention_lstm, bilstm"):
        build_model("nope", SIZES)
    with pytest.raises(ValidationError):
        build_model("lstm", SIZES, {"hiden_size": 16})
    model = build_model("lstm", SIZES, {"hidden_size": 12})
    assert model.config.hidden_size == 12
    assert all(cls.default_loss in LOSSES for cls in MODELS.values())


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_finite_ordered(name):
    model = build(name)
    batch = make_batch()
    for mode in (True, False):
        model.train(mode)
        out = model(inputs(batch))  # no target in the batch: forward never reads it
        assert out.shape == (32, 5, 7)
        assert torch.isfinite(out).all()
        assert (out.diff(dim=-1) >= 0).all(), "quantiles cross"
    big = {**inputs(batch), "x": batch["x"] * 50}  # far outside the normalised range
    assert (model.eval()(big).diff(dim=-1) >= 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_quantile_set_is_configurable(name):
    sizes = ModelSizes(n_features=8, horizon=3, quantiles=(0.1, 0.3, 0.6, 0.9), n_symbols=10, n_sectors=4)
    out = build(name, sizes=sizes).eval()(inputs(make_batch(b=8, sizes=sizes)))
    assert out.shape == (8, 3, 4)
    assert (out.diff(dim=-1) >= 0).all()


@pytest.mark.parametrize("name", [n for n in NAMES if n not in CONSTANT])
def test_embeddings_are_used_and_optional(name):
    batch = inputs(make_batch(b=8))
    model = build(name).eval()
    other = {**batch, "symbol": (batch["symbol"] % 9) + 1, "sector": (batch["sector"] % 3) + 1}
    assert not torch.allclose(model(batch), model(other)), "symbol/sector embeddings have no effect"
    plain = build(name, sizes=ModelSizes(n_features=8, horizon=5)).eval()
    assert plain(batch).shape == (8, 5, 7)
    off = build(name, config={"use_embeddings": False}).eval()
    # the graph model still reads sectors for its sector prior, so only the symbol changes here
    assert torch.equal(off(batch), off({**batch, "symbol": other["symbol"]}))


@pytest.mark.parametrize("name", GRADIENT)  # lightgbm's learning: tests/test_gbm.py
def test_loss_falls_on_learnable_problem(name):
    model = build(name)
    batch = make_batch()
    criterion = PinballLoss(SIZES.quantiles)

    def eval_loss() -> float:
        model.eval()
        torch.manual_seed(123)  # the diffusion objective draws steps and noise
        with torch.no_grad():
            value = model.loss(batch, criterion).item()
        model.train()
        return value

    initial = eval_loss()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        optimiser.zero_grad()
        loss = model.loss(batch, criterion)
        loss.backward()
        optimiser.step()
    final = eval_loss()
    assert final < 0.6 * initial, f"{name}: loss {initial:.4f} -> {final:.4f}"


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output(name):
    batch = inputs(make_batch(b=8))
    a, b, c = build(name, seed=0).eval(), build(name, seed=0).eval(), build(name, seed=1).eval()
    out = a(batch)
    assert torch.equal(out, b(batch))
    assert torch.equal(out, a(batch)), "eval forward is not deterministic"
    if name not in CONSTANT:
        assert not torch.allclose(out, c(batch)), "a different seed should give a different model"


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_roundtrip(name):
    batch = make_batch(b=8)
    model = build(name, seed=0)
    if not model.fits_whole:  # already fitted otherwise
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(2):  # move weights and buffers (e.g. running target stats) off their initial values
            optimiser.zero_grad()
            model.loss(batch, PinballLoss(SIZES.quantiles)).backward()
            optimiser.step()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    clone = build(name, seed=1)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    model.eval()
    clone.eval()
    assert torch.equal(model(inputs(batch)), clone(inputs(batch)))


@pytest.mark.parametrize("name", NAMES)
def test_declared_cross_section_is_the_truth(name):
    """A row-independent model's forecast for a row never changes with its batch-mates; a model that
    mixes rows says so (``cross_sectional``), so the trainer and predictor batch it by date."""
    model = build(name).eval()
    batch = inputs(make_batch(b=16))
    other = {**batch, "x": batch["x"].clone()}
    other["x"][8:] += 3.0 * torch.randn_like(other["x"][8:])  # change rows 8.. only
    same = torch.allclose(model(batch)[:8], model(other)[:8], atol=1e-6)
    assert same != model.cross_sectional, f"{name}: cross_sectional={model.cross_sectional}, same={same}"


def _two_date_dataset(n_symbols: int, seed: int):
    """A WindowDataset with the last rows of two dates for ``n_symbols`` symbols (T-row windows)."""
    t, n_rows = 20, 22
    rng = np.random.default_rng(seed)
    n = n_symbols * n_rows
    dates = np.tile(np.arange(n_rows), n_symbols)
    day = (np.datetime64("2024-01-01") + dates).astype("datetime64[ns]")
    arrays = WindowArrays(
        x=rng.normal(size=(n, SIZES.n_features)).astype(np.float32),
        target=np.zeros((n, SIZES.horizon), np.float32),
        scale=np.ones((n, SIZES.horizon)),
        symbol=np.repeat(np.arange(1, n_symbols + 1), n_rows),
        sector=np.repeat(np.arange(n_symbols) % 3 + 1, n_rows),
        date=day,
        ts_code=np.repeat([f"{600000 + i}.SH" for i in range(n_symbols)], n_rows),
        pos=dates,
        day=day.astype("datetime64[D]").astype(np.int64),
        feature_columns=[f"f{i}" for i in range(SIZES.n_features)],
    )
    rows = np.flatnonzero(dates >= n_rows - 2)  # each symbol's last two dates
    return WindowDataset(arrays, rows, t)


@pytest.mark.parametrize("name", [n for n in NAMES if MODELS[n].cross_sectional])
def test_cross_sectional_forecasts_ignore_other_dates(name):
    """Predicted by date: perturbing every row of the last date leaves the previous date's forecasts."""
    model = build(name).eval()
    ds = _two_date_dataset(6, 0)
    before, order = predict(model, ds)
    last = ds.arrays.day == ds.arrays.day.max()
    ds.arrays.x[last] += 3.0  # only the last date's own row of each window changes
    after, order2 = predict(model, ds)
    assert np.array_equal(order, order2)
    earlier = ds.arrays.day[ds.rows[order]] < ds.arrays.day.max()
    assert earlier.sum() == 6
    np.testing.assert_array_equal(before[earlier], after[earlier])
    assert not np.allclose(before[~earlier], after[~earlier])


@pytest.mark.parametrize("name", [n for n in GRADIENT if n not in {"diffusion", "hybrid"}])
def test_an_untrained_model_starts_at_the_given_quantiles(name):
    """Quantile heads start at (H, Q) values (the trainer passes the training targets' empirical
    quantiles): an untrained model forecasts about that distribution for any input. Not the diffusion
    model (no head: sampling through an untrained denoiser) nor the hybrid, which mixes one in."""
    values = torch.tensor([[NormalDist().inv_cdf(q) for q in SIZES.quantiles]] * SIZES.horizon)
    model = build(name)
    assert model.start_at_quantiles(values) >= 1
    out = model.eval()(inputs(make_batch(b=64)))
    assert (out.mean(0) - values).abs().max() < 0.2  # measured 0.03-0.13
    assert (out - values).abs().max() < 0.3  # measured 0.10-0.21
