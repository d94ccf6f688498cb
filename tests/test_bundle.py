"""Model bundles: save -> load -> the same forecasts as the model itself, on the right rows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from stockml.evaluation.calibration import AciState
from stockml.features import (
    FeatureArtifacts,
    FeatureConfig,
    FeatureMismatchError,
    Vocab,
    feature_groups,
    fit_normalizer,
    fit_symbol_vocab,
    inverse_target,
    target_scales,
    transform_features,
)
from stockml.models import ForecastModel, ModelSizes, build_model
from stockml.models.ensemble import EnsembleModel
from stockml.registry.bundle import BUNDLE_FILE, STATE_FILE, Forecaster, load_bundle, save_bundle

FEATURES = ["logret_1", "rv_5", "vol_z", "rsi"]
GROUPS = feature_groups(FEATURES)  # as fit_on_window records them
LABELS = ["label_h1", "label_h2", "label_h3"]
H, T = 3, 10
CODES = ("000001.SZ", "600000.SH", "600519.SH")
TRAIN = (dt.date(2021, 1, 4), dt.date(2021, 4, 30))
QCOLS = ["q0.05", "q0.1", "q0.25", "q0.5", "q0.75", "q0.9", "q0.95"]


def feature_frame(n_days: int = 120, seed: int = 0) -> pd.DataFrame:
    """3 symbols x ``n_days``; the last symbol lists on day 50, the first stops 2 days early.

    Labels are cumulative sums of a daily return, NaN past each symbol's last row (as in labels.py).
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_days).astype("datetime64[ns]")
    parts = []
    for i, code in enumerate(CODES):
        days = dates[50:] if i == 2 else dates[:-2] if i == 0 else dates
        n = len(days)
        ret = rng.normal(0, 0.02, n)
        cum = np.cumsum(np.r_[ret, np.full(H, np.nan)])
        labels = {f"label_h{k}": cum[k : k + n] - cum[:n] for k in range(1, H + 1)}
        feats = {f: rng.normal(i, 1 + i, n) for f in FEATURES}
        parts.append(
            pd.DataFrame(
                {"ts_code": code, "trade_date": days, "sector_id": np.int64(1 + i % 2), **feats, **labels}
            )
        )
    return pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=seed)  # order must not matter


def fit_artifacts(frame: pd.DataFrame) -> FeatureArtifacts:
    norm = fit_normalizer(frame, FEATURES, *TRAIN, min_rows=20, label_columns=LABELS, normalize_target=True)
    return FeatureArtifacts(norm, fit_symbol_vocab(frame, *TRAIN), Vocab(name="sector", tokens=("a", "b")))


def trained_model(
    name: str, artifacts: FeatureArtifacts, config: dict, groups: dict[str, list[int]] | None = GROUPS
) -> tuple[ForecastModel, ModelSizes]:
    sizes = ModelSizes(
        n_features=len(FEATURES),
        horizon=H,
        n_symbols=artifacts.symbol_vocab.size,
        n_sectors=artifacts.sector_vocab.size,
        feature_groups=groups,
    )
    torch.manual_seed(0)
    model = build_model(name, sizes, config)
    with torch.no_grad():  # stand-in for training: weights no fresh initialisation reproduces
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    for part in [m for m in model.modules() if isinstance(m, ForecastModel) and m.fits_whole]:
        g = torch.Generator().manual_seed(1)  # parts fitted in one call (lightgbm, unconditional): a fit
        symbol = torch.randint(0, sizes.n_symbols, (300,), generator=g)
        x = torch.randn(300, T, len(FEATURES), generator=g)
        target = x[:, -1, :1] + 0.3 * symbol[:, None] + torch.randn(300, H, generator=g)
        part.fit_whole(
            {"x": x, "symbol": symbol, "target": target, "mask": torch.ones(300, H).bool()}, None, 0
        )
    if isinstance(model, EnsembleModel):  # learned weights, not the equal start
        model.weights.copy_(torch.softmax(torch.randn(model.weights.shape), dim=0))
    return model, sizes


def saved_bundle(
    tmp_path: Path,
    frame: pd.DataFrame,
    name: str = "lstm",
    config: dict | None = None,
    groups: dict[str, list[int]] | None = GROUPS,
    calibration: AciState | None = None,
) -> Path:
    artifacts = fit_artifacts(frame)
    config = config if config is not None else {"hidden_size": 8, "embedding_dim": 2}
    model, sizes = trained_model(name, artifacts, config, groups)
    return save_bundle(
        tmp_path / "bundle",
        model=model,
        model_name=name,
        model_config=config,
        sizes=sizes,
        feature_config=FeatureConfig(horizon=H, lookback=T),
        feature_columns=FEATURES,
        artifacts=artifacts,
        train_window=TRAIN,
        calibration=calibration,
    )


def direct_forecast(forecaster: Forecaster, frame: pd.DataFrame, ends: dict[str, pd.Timestamp]) -> np.ndarray:
    """The model run by hand on each symbol's last T rows up to ``ends[code]``: (N, H, Q) raw returns."""
    norm, vocab = forecaster.artifacts.norm, forecaster.artifacts.symbol_vocab
    windows = [
        frame.loc[(frame["ts_code"] == code) & (frame["trade_date"] <= end)].sort_values("trade_date").tail(T)
        for code, end in sorted(ends.items())
    ]
    batch = {
        "x": torch.from_numpy(np.stack([transform_features(w, norm) for w in windows])),  # (N, T, F)
        "symbol": torch.from_numpy(vocab.encode([w["ts_code"].iloc[-1] for w in windows])),
        "sector": torch.tensor([int(w["sector_id"].iloc[-1]) for w in windows]),
        "date": torch.tensor([w["trade_date"].iloc[-1].toordinal() for w in windows]),  # graph: per date
    }
    forecaster.model.eval()
    with torch.no_grad():
        pred = forecaster.model(batch).numpy().astype(np.float64)
    return inverse_target(pred, target_scales(pd.concat([w.tail(1) for w in windows]), norm), quantiles=True)


def as_cube(out: pd.DataFrame) -> np.ndarray:
    """Long forecast frame -> (N, H, Q) in ts_code order."""
    out = out.sort_values(["ts_code", "horizon"])
    return out[QCOLS].to_numpy().reshape(-1, H, len(QCOLS))  # (N*H, Q) -> (N, H, Q)


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("lstm", {"hidden_size": 8, "embedding_dim": 2}),
        ("diffusion", {"hidden_size": 8, "embedding_dim": 2, "n_steps": 4, "n_samples": 16}),
        ("graph", {"hidden_size": 8, "embedding_dim": 2, "n_layers": 1}),
        ("multibranch", {"hidden_size": 8, "embedding_dim": 2}),
        ("lightgbm", {"hidden_size": 8, "n_estimators": 20, "min_child_samples": 5}),
        (
            "ensemble",
            {
                "hidden_size": 8,
                "members": ("unconditional", "lightgbm", "lstm:60"),
                "member_configs": {
                    "lightgbm": {"n_estimators": 20, "min_child_samples": 5},
                    "lstm:60": {"hidden_size": 8, "embedding_dim": 2},
                },
            },
        ),
        ("hybrid21", {"size": "tiny", "embedding_dim": 2}),
        (
            "distilled",
            {
                "hidden_size": 8,
                "teacher": "tcn",
                "teacher_config": {"hidden_size": 8, "embedding_dim": 2},
                "student_config": {"hidden_size": 8, "embedding_dim": 2},
            },
        ),
    ],
)
def test_load_gives_the_models_own_forecasts(tmp_path: Path, name: str, config: dict) -> None:
    frame = feature_frame()
    folder = saved_bundle(tmp_path, frame, name, config)
    for file in (BUNDLE_FILE, STATE_FILE, "norm_params.json", "symbol_vocab.json", "sector_vocab.json"):
        assert (folder / file).is_file()
    meta = json.loads((folder / BUNDLE_FILE).read_text())
    assert meta["model_name"] == name and meta["model_config"]["hidden_size"] == 8
    assert meta["feature_columns"] == FEATURES and meta["lookback"] == T and meta["horizon"] == H
    assert meta["sizes"]["n_symbols"] == 4 and meta["feature_config"]["lookback"] == T
    groups = {"price": [0], "volatility": [1], "volume": [2], "indicator": [3]}
    assert meta["sizes"]["feature_groups"] == groups
    assert (meta["train_start"], meta["train_end"]) == ("2021-01-04", "2021-04-30")
    assert meta["quantiles"] == [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95] and meta["stockml_version"]

    forecaster = load_bundle(folder)
    assert forecaster.model.sizes.feature_groups == GROUPS  # rebuilt with the same sizes
    out = forecaster.predict(frame)
    assert list(out.columns) == ["ts_code", "as_of", "horizon", *QCOLS, "p_up"]
    # P(up) is the forecast's own: more than half exactly where the median is above 0
    assert ((out["p_up"] > 0.5) == (out["q0.5"] > 0)).all() and out["p_up"].between(0, 1).all()
    last = frame.groupby("ts_code")["trade_date"].max()
    assert len(out) == len(CODES) * H and out["horizon"].tolist() == [1, 2, 3] * len(CODES)
    assert dict(zip(out["ts_code"], out["as_of"], strict=True)) == {c: d.date() for c, d in last.items()}
    np.testing.assert_allclose(
        as_cube(out), direct_forecast(forecaster, frame, dict(last)), rtol=0, atol=1e-6
    )
    assert (np.diff(out[QCOLS].to_numpy(), axis=1) >= 0).all()  # quantiles do not cross
    pd.testing.assert_frame_equal(load_bundle(folder).predict(frame), out)  # deterministic


def test_a_bundle_saved_before_sizes_carried_feature_groups_still_loads(tmp_path: Path) -> None:
    frame = feature_frame()
    folder = saved_bundle(tmp_path, frame, "multibranch", groups=None)  # trained on two halves
    meta = json.loads((folder / BUNDLE_FILE).read_text())
    assert meta["sizes"].pop("feature_groups") is None  # older bundles: null, or no key at all
    (folder / BUNDLE_FILE).write_text(json.dumps(meta))
    forecaster = load_bundle(folder)
    assert forecaster.model.sizes.feature_groups is None
    assert list(forecaster.model.branches) == ["price", "indicator"]
    last = frame.groupby("ts_code")["trade_date"].max()
    np.testing.assert_allclose(
        as_cube(forecaster.predict(frame)), direct_forecast(forecaster, frame, dict(last)), rtol=0, atol=1e-6
    )


def test_as_of_picks_that_day_and_ignores_later_rows(tmp_path: Path) -> None:
    frame = feature_frame()
    forecaster = load_bundle(saved_bundle(tmp_path, frame))
    day = pd.Timestamp(frame["trade_date"].sort_values().unique()[55])  # listing + 5 rows for CODES[2]
    out = forecaster.predict(frame, as_of=day.date())
    assert sorted(set(out["ts_code"])) == list(CODES[:2])  # CODES[2] lacks a full window: skipped
    assert set(out["as_of"]) == {day.date()}
    # Point in time: rows after as_of (and their labels) change nothing.
    past = frame.loc[frame["trade_date"] <= day].drop(columns=LABELS)
    pd.testing.assert_frame_equal(forecaster.predict(past), out)
    pd.testing.assert_frame_equal(forecaster.predict(frame, as_of=str(day.date())), out)
    ends = dict.fromkeys(CODES[:2], day)
    np.testing.assert_allclose(as_cube(out), direct_forecast(forecaster, frame, ends), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="no symbol has a full 10-row window ending at as_of=2020-01-01"):
        forecaster.predict(frame, as_of="2020-01-01")


def test_feature_mismatch_names_the_columns(tmp_path: Path) -> None:
    frame = feature_frame()
    forecaster = load_bundle(saved_bundle(tmp_path, frame))
    bad = frame.drop(columns=["rv_5"]).assign(macd_dif=0.0)
    with pytest.raises(FeatureMismatchError, match=r"missing \['rv_5'\], unexpected \['macd_dif'\]"):
        forecaster.predict(bad)
    reordered = frame[["ts_code", "trade_date", "sector_id", *FEATURES[::-1]]]
    pd.testing.assert_frame_equal(forecaster.predict(reordered), forecaster.predict(frame))


def test_price_quantiles_from_last_close(tmp_path: Path) -> None:
    frame = feature_frame()
    forecaster = load_bundle(saved_bundle(tmp_path, frame))
    closes = pd.Series({CODES[0]: 10.0, CODES[1]: 8.5})  # no close for CODES[2]
    out = forecaster.predict(frame, last_close=closes)
    expected_close = out["ts_code"].map(closes).to_numpy()
    np.testing.assert_array_equal(out["last_close"].to_numpy(), expected_close)
    price = out[[f"price_{c}" for c in QCOLS]].to_numpy()
    np.testing.assert_allclose(price, expected_close[:, None] * np.exp(out[QCOLS].to_numpy()), rtol=1e-12)
    assert np.isnan(price[out["ts_code"].to_numpy() == CODES[2]]).all()
    assert np.isfinite(price[out["ts_code"].to_numpy() != CODES[2]]).all()

    # A raw ``close`` column in the frame serves the same purpose (its value on the as_of row).
    with_close = frame.assign(close=frame["ts_code"].map({**closes, CODES[2]: 1.0}))
    from_column = forecaster.predict(with_close)
    np.testing.assert_allclose(from_column["last_close"], out["ts_code"].map({**closes, CODES[2]: 1.0}))
    pd.testing.assert_frame_equal(from_column[QCOLS], out[QCOLS])


def test_save_rejects_pieces_that_do_not_fit(tmp_path: Path) -> None:
    frame = feature_frame()
    artifacts = fit_artifacts(frame)
    model, sizes = trained_model("lstm", artifacts, {"hidden_size": 8})
    kwargs = dict(
        model=model,
        model_name="lstm",
        model_config={"hidden_size": 8},
        sizes=sizes,
        feature_config=FeatureConfig(horizon=H, lookback=T),
        feature_columns=FEATURES,
        artifacts=artifacts,
        train_window=TRAIN,
    )
    with pytest.raises(FeatureMismatchError, match=r"missing \['rsi'\]"):
        save_bundle(tmp_path, **{**kwargs, "feature_columns": FEATURES[:3], "sizes": ModelSizes(3, H)})
    with pytest.raises(TypeError, match="not the registered 'tcn' model"):
        save_bundle(tmp_path, **{**kwargs, "model_name": "tcn", "model_config": None})
    with pytest.raises(ValueError, match="model_config differs"):
        save_bundle(tmp_path, **{**kwargs, "model_config": {"hidden_size": 16}})
    with pytest.raises(ValueError, match="horizon"):
        save_bundle(tmp_path, **{**kwargs, "feature_config": FeatureConfig(horizon=5, lookback=T)})
    assert not (tmp_path / BUNDLE_FILE).exists()


def test_a_bundled_calibration_widens_the_served_quantiles_around_the_median(tmp_path: Path) -> None:
    frame = feature_frame()
    levels = tuple(float(c.removeprefix("q")) for c in QCOLS)
    start = AciState.start(levels, H, gamma=0.01)
    phi = tuple(tuple(0.1 * h * (q != 0.5) for q in levels) for h in range(1, H + 1))  # x e^0.1h, not q0.5
    state = AciState(levels, 0.01, phi, ("2021-06-01",) * H)
    raw = load_bundle(saved_bundle(tmp_path / "raw", frame)).predict(frame)
    forecaster = load_bundle(saved_bundle(tmp_path / "cal", frame, calibration=state))
    assert forecaster.calibration == state
    served = forecaster.predict(frame)
    median = raw["q0.5"].to_numpy()[:, None]
    widened = median + (raw[QCOLS].to_numpy() - median) * np.exp(0.1 * raw["horizon"].to_numpy())[:, None]
    np.testing.assert_allclose(served[QCOLS].to_numpy(), widened, rtol=1e-12)
    pd.testing.assert_frame_equal(forecaster.predict(frame, raw=True), raw)
    pd.testing.assert_frame_equal(forecaster.predict(frame, calibration=start), raw)  # factors 1
    with pytest.raises(ValueError, match="calibration for quantiles"):
        forecaster.predict(frame, calibration=AciState.start((0.1, 0.5, 0.9), H, 0.01))
