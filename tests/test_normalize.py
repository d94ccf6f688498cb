"""Normalisation fitted on the training window only, persisted exactly; vocabularies."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from feature_helpers import synthetic_market
from hypothesis import given, settings
from hypothesis import strategies as st

from stockml.features import (
    FeatureArtifacts,
    FeatureConfig,
    FeatureMismatchError,
    NormParams,
    build_feature_frame,
    fit_normalizer,
    fit_sector_vocab,
    fit_symbol_vocab,
    inverse_target,
    target_scales,
    transform_features,
    transform_target,
)
from stockml.features.vocab import UNKNOWN, Vocab, fit_vocab

START, END = dt.date(2021, 5, 1), dt.date(2021, 9, 30)


@pytest.fixture(scope="module")
def built() -> tuple[pd.DataFrame, list[str], list[str]]:
    result = build_feature_frame(synthetic_market(n_symbols=4, n_days=260, seed=11), FeatureConfig())
    return result.frame, result.feature_columns, result.label_columns


def fit(frame: pd.DataFrame, features: list[str], **kwargs: object) -> NormParams:
    return fit_normalizer(frame, features, START, END, min_rows=30, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), drop=st.booleans(), method=st.sampled_from(["zscore", "robust"]))
def test_fit_ignores_everything_outside_the_window(
    built: tuple[pd.DataFrame, list[str], list[str]], seed: int, drop: bool, method: str
) -> None:
    frame, features, labels = built
    before = fit(frame, features, method=method, label_columns=labels, normalize_target=True)
    outside = ~frame["trade_date"].between(pd.Timestamp(START), pd.Timestamp(END)).to_numpy()
    rng = np.random.default_rng(seed)
    if drop:
        changed = frame.loc[~outside | (rng.random(len(frame)) < 0.3)]
    else:
        noise = rng.normal(0, 5, (int(outside.sum()), len(features) + len(labels)))
        changed = frame.copy()
        changed.loc[outside, features + labels] = changed.loc[outside, features + labels].to_numpy() + noise
    extra = frame.loc[outside].assign(ts_code="000999.SZ")  # a symbol that exists only outside
    after = fit(
        pd.concat([changed, extra]), features, method=method, label_columns=labels, normalize_target=True
    )
    assert after == before


def test_training_rows_come_out_standardised(built: tuple[pd.DataFrame, list[str], list[str]]) -> None:
    frame, features, _ = built
    params = fit(frame, features, clip=1e9)
    x = transform_features(frame, params, features)
    inside = frame["trade_date"].between(pd.Timestamp(START), pd.Timestamp(END)).to_numpy()
    code = frame["ts_code"].iloc[0]
    rows = inside & (frame["ts_code"] == code).to_numpy()
    scaled = [
        i  # per-symbol statistics: every column but flags and the cross-symbol "_xs" ones
        for i, f in enumerate(features)
        if not f.endswith(("_flag", "_xs")) and frame.loc[rows, f].std() > 1e-6
    ]
    np.testing.assert_allclose(x[rows][:, scaled].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(x[rows][:, scaled].std(axis=0), 1.0, atol=1e-3)
    flags = [i for i, f in enumerate(features) if f.endswith("_flag")]
    assert flags and np.array_equal(x[:, flags], frame[[features[i] for i in flags]].to_numpy(np.float32))


def test_robust_centres_on_the_median(built: tuple[pd.DataFrame, list[str], list[str]]) -> None:
    frame, features, _ = built
    params = fit(frame, features, method="robust", clip=1e9)
    x = transform_features(frame, params)
    inside = frame["trade_date"].between(pd.Timestamp(START), pd.Timestamp(END)).to_numpy()
    rows = inside & (frame["ts_code"] == frame["ts_code"].iloc[0]).to_numpy()
    j = features.index("logret_1")
    assert np.median(x[rows, j]) == pytest.approx(0.0, abs=1e-6)


def test_unseen_and_thin_symbols_use_global_stats(built: tuple[pd.DataFrame, list[str], list[str]]) -> None:
    frame, features, _ = built
    inside = frame.loc[frame["trade_date"].between(pd.Timestamp(START), pd.Timestamp(END))]
    counts = inside["ts_code"].value_counts()
    thin = counts.idxmin()  # the late lister
    params = fit_normalizer(frame, features, START, END, min_rows=int(counts.min()) + 1)
    assert set(params.per_symbol) == set(counts.index) - {thin}
    g = params.global_stats
    for rows in (frame.loc[frame["ts_code"] == thin].head(5), frame.iloc[:5].assign(ts_code="000999.SZ")):
        expected = np.clip(
            (rows[features].to_numpy() - g.center) / np.array(g.scale), -params.clip, params.clip
        )
        np.testing.assert_allclose(transform_features(rows, params), expected, rtol=1e-5, atol=1e-6)


def test_save_load_gives_identical_transform(
    built: tuple[pd.DataFrame, list[str], list[str]], tmp_path: Path
) -> None:
    frame, features, labels = built
    params = fit(frame, features, method="robust", label_columns=labels)
    loaded = NormParams.load(params.save(tmp_path / "norm.json"))
    assert loaded == params
    assert np.array_equal(
        transform_features(frame, loaded, features), transform_features(frame, params, features)
    )
    saved = json.loads((tmp_path / "norm.json").read_text())
    assert saved["fit_start"] == "2021-05-01" and saved["features"] == features and saved["version"] == 1
    saved["features"] = list(reversed(features))
    (tmp_path / "edited.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="does not match its hash"):
        NormParams.load(tmp_path / "edited.json")


def test_feature_list_mismatch_is_a_clear_error(built: tuple[pd.DataFrame, list[str], list[str]]) -> None:
    frame, features, _ = built
    params = fit(frame, features)
    with pytest.raises(FeatureMismatchError, match=r"missing \['rsi'\], unexpected \['new_feature'\]"):
        transform_features(frame, params, [f if f != "rsi" else "new_feature" for f in features])
    with pytest.raises(FeatureMismatchError, match="different order"):
        params.check_features(features[::-1])
    with pytest.raises(FeatureMismatchError, match="lacks features"):
        transform_features(frame.drop(columns=["rsi"]), params)


def test_target_scaling_inverts_exactly(built: tuple[pd.DataFrame, list[str], list[str]]) -> None:
    frame, features, labels = built
    rows = frame.dropna(subset=labels)
    raw = rows[labels].to_numpy()
    identity = fit(frame, features, label_columns=labels)
    assert identity.target_scale is None and identity.target_vol_column is None
    assert np.array_equal(transform_target(raw, target_scales(rows, identity)), raw)
    params = fit(frame, features, label_columns=labels, normalize_target=True)
    scales = target_scales(rows, params)
    np.testing.assert_allclose(scales[0], params.target_scale)  # one sd per horizon, every row
    scaled = transform_target(raw, scales)
    assert not np.allclose(scaled, raw)
    np.testing.assert_allclose(inverse_target(scaled, scales), raw, rtol=1e-12)
    quantiles = torch.tensor(scaled[:8, :, None].repeat(3, axis=2))  # (B, H, Q)
    back = inverse_target(quantiles, scales[:8], quantiles=True)
    np.testing.assert_allclose(back[..., 1].numpy(), raw[:8], rtol=1e-12)


def test_volatility_standardised_target(built: tuple[pd.DataFrame, list[str], list[str]]) -> None:
    frame, features, labels = built
    frame = frame.assign(sigma=np.linspace(0.01, 0.03, len(frame)))
    params = fit(frame, features, label_columns=labels, normalize_target=True, target_vol_column="sigma")
    assert params.target_scale is None and params.target_vol_column == "sigma"
    scales = target_scales(frame.iloc[[0, -1]], params)
    h = np.sqrt(np.arange(1, len(labels) + 1))
    np.testing.assert_allclose(scales, np.array([[0.01], [0.03]]) * h)  # sigma_t * sqrt(h), row by row
    bad = target_scales(frame.iloc[:2].assign(sigma=[0.0, np.nan]), params)
    assert np.isnan(bad).all(), "no volatility, no scale: such rows are never trained on or forecast"
    with pytest.raises(ValueError, match="not a column"):
        fit(frame, features, label_columns=labels, target_vol_column="nope")


def test_cross_symbol_features_keep_their_level(built: tuple[pd.DataFrame, list[str], list[str]]) -> None:
    frame, features, _ = built
    level = frame["ts_code"].rank(method="dense").to_numpy()  # a per-symbol constant: 1, 2, 3, 4
    frame = frame.assign(level_xs=level, level=level)
    params = fit(frame, [*features, "level_xs", "level"], clip=1e9)
    x = transform_features(frame, params)
    by_symbol = pd.DataFrame({"code": frame["ts_code"], "xs": x[:, -2], "own": x[:, -1]})
    by_symbol = by_symbol.groupby("code").mean()
    assert by_symbol["xs"].is_monotonic_increasing and by_symbol["xs"].std() > 0.5  # levels survive
    np.testing.assert_allclose(by_symbol["own"], 0.0, atol=1e-6)  # per-symbol z-scoring removes them


def test_vocabularies(built: tuple[pd.DataFrame, list[str], list[str]], tmp_path: Path) -> None:
    frame, features, _ = built
    symbols = fit_symbol_vocab(frame, START, END)
    assert symbols.fit_start == START and symbols.tokens == tuple(sorted(symbols.tokens))
    codes = symbols.encode(["000999.SZ", symbols.tokens[0], None])
    assert codes.tolist() == [UNKNOWN, 1, UNKNOWN] and symbols.size == len(symbols.tokens) + 1
    assert symbols.decode([0, 1]) == [None, symbols.tokens[0]]
    early = fit_symbol_vocab(frame, START, dt.date(2021, 5, 1))
    assert set(early.tokens) <= set(symbols.tokens)
    sectors = fit_sector_vocab(pd.DataFrame({"ts_code": ["a", "b", "c"], "industry": ["银行", None, "汽车"]}))
    assert sectors.tokens == ("汽车", "银行") and sectors.encode(["银行", "白酒"]).tolist() == [2, 0]
    artifacts = FeatureArtifacts(fit(frame, features), symbols, sectors)
    artifacts.save(tmp_path)
    assert FeatureArtifacts.load(tmp_path) == artifacts
    assert fit_vocab([], "empty").size == 1


def test_fitted_transforms_share_one_versioned_json_format(
    built: tuple[pd.DataFrame, list[str], list[str]], tmp_path: Path
) -> None:
    frame, features, _ = built
    for obj, cls, what in [
        (fit(frame, features), NormParams, "NormParams"),
        (fit_vocab(["b", "a"], "symbol", START, END), Vocab, "vocabulary"),
    ]:
        path = obj.save(tmp_path / what / "fitted.json")
        assert path.read_text(encoding="utf-8") == obj.model_dump_json(indent=1)  # the format as before
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # nothing left aside
        assert cls.load(path) == obj
        stale = json.loads(path.read_text(encoding="utf-8")) | {"version": 0}
        path.write_text(json.dumps(stale), encoding="utf-8")
        with pytest.raises(ValueError, match=f"{what} version 0, this code reads 1"):
            cls.load(path)
