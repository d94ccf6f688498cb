"""Walk-forward folds: a model's result is its own (seeded before it is built), seeds are reported."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from feature_helpers import synthetic_market

from stockml.features import FeatureConfig, build_feature_frame
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.walkforward import run_walk_forward


@pytest.fixture(scope="module")
def features():
    result = build_feature_frame(synthetic_market(n_symbols=4, n_days=420, seed=3), FeatureConfig(horizon=2))
    return result


def _fold(features, models: tuple[str, ...], train: TrainConfig, **config):
    """The one fold of a small walk-forward of ``models`` (``config``: EvalConfig fields to change)."""
    cfg = EvalConfig(
        **{
            "models": models,
            "horizon": 2,
            "lookback": 10,
            "folds": 1,
            "test_days": 20,
            "valid_days": 20,
            "min_train_days": 150,
            "baselines": ("random_walk",),
            **config,
        }
    )
    (out,) = run_walk_forward(
        features.frame,
        features.feature_columns,
        features.label_columns,
        cfg,
        train,
        features.sector_vocab.size,
    )
    return out


def _run(features, models: tuple[str, ...], seeds: int = 1) -> dict[str, pd.DataFrame]:
    train = TrainConfig(max_epochs=1, max_batches_per_epoch=3, progress=False, device="cpu")
    configs = {m: {"hidden_size": 8} for m in models}
    return _fold(features, models, train, seeds=seeds, model_configs=configs).predictions


def test_a_model_does_not_depend_on_what_ran_before_it(features) -> None:
    alone = _run(features, ("lstm",))["lstm"]
    after = _run(features, ("tcn", "lstm"))["lstm"]
    pd.testing.assert_frame_equal(alone, after)


def test_extra_seeds_are_separate_runs(features) -> None:
    preds = _run(features, ("lstm",), seeds=2)
    assert set(preds) == {"random_walk", "lstm", "lstm.seed1"}
    assert not preds["lstm"]["q0.5"].equals(preds["lstm.seed1"]["q0.5"])
    pd.testing.assert_frame_equal(preds["lstm"], _run(features, ("lstm",))["lstm"])


def test_an_ensemble_learns_its_weights_per_fold_and_pickles(features) -> None:
    """Members fitted on the fold's training dates, weights on its validation block: in the fold output
    (and so in the report), and the fitted ensemble survives pickling (what Dask workers send back)."""
    ensemble = {
        "members": ("unconditional", "lightgbm"),
        "member_configs": {"lightgbm": {"n_estimators": 30, "min_child_samples": 20}},
        "combine": "stack",
    }
    train = TrainConfig(progress=False, device="cpu")
    out = _fold(features, ("ensemble",), train, valid_days=40, model_configs={"ensemble": ensemble})
    weights = out.weights["ensemble"]
    assert set(weights) == {"unconditional", "lightgbm"}
    assert np.allclose(np.add(weights["unconditional"], weights["lightgbm"]), 1.0)
    assert len(weights["lightgbm"]) == len(EvalConfig().quantiles)
    assert out.predictions["ensemble"]["q0.5"].notna().all()
    clone = pickle.loads(pickle.dumps(out))
    batch = {
        "x": torch.randn(5, 10, len(features.feature_columns)),
        "symbol": torch.ones(5, dtype=torch.long),
    }
    assert torch.equal(clone.fitted["ensemble"](batch), out.fitted["ensemble"](batch))
