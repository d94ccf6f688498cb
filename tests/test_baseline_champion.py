"""When nothing beats the best baseline and there is no champion yet, the volatility baseline as a model
(``unconditional``) becomes champion and serves forecasts: ``train_and_gate`` on a real MLflow registry; the
daily summary says which procedure won and why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feature_helpers import synthetic_market
from mlflow import MlflowClient
from test_tracking import cfg  # noqa: F401  (fixture: a fresh store under tmp_path)

from stockml.evaluation.run import data_info
from stockml.registry import tags as T
from stockml.registry.descriptions import GATE_HEADING, MODEL_DESCRIPTION
from stockml.registry.lifecycle import Champion, Promoted, Registered, current_champion, train_and_gate
from stockml.registry.promotion import BASELINE_MODEL, Decision, GateConfig, Scores
from stockml.registry.tracking import TrackingConfig, get_alias_version, load_forecaster
from stockml.serving.daily_report import daily_markdown, promotion_lines
from stockml.serving.forecast import forecast_with
from stockml.store.lake import Lake, lake_lineage
from stockml.training.config import EvalConfig, TrainConfig


@pytest.mark.slow
def test_with_nothing_better_than_the_baseline_the_volatility_baseline_is_champion(
    cfg: TrackingConfig,  # noqa: F811
    tmp_path: Path,
) -> None:
    # A random walk with constant volatility: nothing to learn, so an lstm trained for three batches has no
    # significant gain over the best baseline.
    data = synthetic_market(n_symbols=4, n_days=420, seed=3)
    lake = Lake(tmp_path / "lake")
    lake.upsert("bars", data.bars)
    lineage = lake_lineage(lake, dt.date(2022, 8, 1))
    dates = pd.to_datetime(data.bars["trade_date"])
    requested = EvalConfig(
        models=("lstm",),
        horizon=2,
        lookback=10,
        folds=1,
        test_days=40,
        valid_days=20,
        min_train_days=150,
        baselines=("random_walk", "ewma_vol"),
        model_configs={"lstm": {"hidden_size": 8}},
    )
    train = TrainConfig(max_epochs=1, max_batches_per_epoch=3, progress=False, device="cpu")
    info = data_info("synthetic", data.bars, dates.min().date(), dates.max().date())
    outcome = train_and_gate(data, requested, train, cfg, "demo", GateConfig(), info=info, lineage=lineage)

    lstm = outcome.report.results["lstm"].metrics
    assert not outcome.decision.promote
    assert any(r.startswith("does not beat the best baseline") for r in outcome.decision.failed)
    assert lstm["skill_crps_best_t"] is not None and lstm["skill_crps_best_t"] < 2.0
    assert BASELINE_MODEL in outcome.report.results  # scored on the same folds, though not requested
    assert outcome.baseline is not None and outcome.winner == outcome.baseline
    baseline = outcome.baseline.registered
    assert (baseline.name, baseline.version) == (BASELINE_MODEL, outcome.challenger.version + 1)
    assert outcome.champion_version == baseline.version

    # The registry: the challenger tagged rejected, the baseline champion with the reasons.
    assert get_alias_version(cfg, "demo", "challenger") == outcome.challenger.version
    assert get_alias_version(cfg, "demo", "champion") == baseline.version
    client = MlflowClient(cfg.resolved_tracking_uri())
    assert client.get_model_version("demo", str(outcome.challenger.version)).tags[T.PROMOTION] == "rejected"
    tags = client.get_model_version("demo", str(baseline.version)).tags
    assert tags[T.PROMOTION] == "promoted" and tags[T.MODEL_NAME] == BASELINE_MODEL
    reasons = tags[T.PROMOTION_REASONS]
    assert (
        f"challenger lstm v{outcome.challenger.version} rejected: does not beat the best baseline" in reasons
    )
    assert "the honest forecast is the volatility baseline ewma_vol" in reasons
    champion = current_champion(cfg, "demo")
    assert champion is not None and champion.model_name == BASELINE_MODEL

    # What the MLflow UI shows: the model and every version described in words, the run's lake inputs.
    assert client.get_registered_model("demo").description == MODEL_DESCRIPTION
    window = T.format_window(*outcome.report.test_window)
    for version, name, verdict, reason in (
        (outcome.challenger.version, "lstm", "rejected", "does not beat the best baseline"),
        (baseline.version, BASELINE_MODEL, "promoted", "the honest forecast is the"),
    ):
        found = client.get_model_version("demo", str(version))
        trained = T.format_window(found.tags[T.TRAIN_START], found.tags[T.TRAIN_END])
        assert found.description.startswith(f"**{name}** `")
        assert f"- Training window: {trained}\n" in found.description
        assert f"- Evaluation window (out of sample): {window} (1 walk-forward fold)" in found.description
        assert f"\n\n{GATE_HEADING} {verdict}\n" in found.description and reason in found.description
    inputs = client.get_run(outcome.run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("bars", lineage["lake_hashes"]["bars"])]

    # It serves forecasts: its training quantiles of z, scaled by each symbol's sigma_t * sqrt(h).
    as_of = dates.max().date()
    calendar = list(pd.bdate_range(as_of, periods=10).date)
    model = load_forecaster(cfg, "models:/demo@champion")
    levels = model.unwrap_python_model().forecaster.model.levels.numpy()  # (H, Q)
    preds = forecast_with(model, data, as_of, calendar, raw=True).predictions
    assert sorted(preds["horizon"].unique()) == [1, 2] and preds["ts_code"].nunique() == 4
    qcols = [f"q{q}" for q in requested.quantiles]
    # served, they wear the online calibration its walk-forward ended in (bundled with the version)
    calibration = model.unwrap_python_model().forecaster.calibration
    window = outcome.report.test_window
    assert calibration is not None and window is not None
    assert window[0] < (calibration.through[0] or "") <= window[1]  # learned through the test block
    served = forecast_with(model, data, as_of, calendar).predictions
    np.testing.assert_allclose(served[qcols], calibration.apply(preds)[qcols], rtol=1e-12)
    for h, rows in preds.groupby("horizon"):
        q = rows[qcols].to_numpy()
        spread, z = q[:, -1] - q[:, 0], levels[int(h) - 1]
        assert np.allclose(q / spread[:, None], z / (z[-1] - z[0]))  # the same shape for every symbol
        assert spread.std() > 0  # each symbol's own volatility


def test_the_daily_summary_says_which_procedure_won_and_why() -> None:
    challenger = Registered("tcn", 1, Scores(0.9, 0.9))
    reasons = ("does not beat the best baseline linear", "coverage_90 0.900 inside [0.85, 0.95]")
    rejected = Decision(False, reasons, failed=reasons[:1])
    why = Decision(True, ("challenger tcn v1 rejected: does not beat ...", "the honest forecast ..."))
    baseline = Promoted(Registered(BASELINE_MODEL, 2, Scores(1.0, 0.9)), why)

    lines = promotion_lines("stockml", challenger, rejected, baseline, None)
    assert lines["decision"] == "rejected" and lines["reasons"].startswith("does not beat the best baseline")
    assert lines["winner"] == "unconditional (stockml v2), the volatility baseline ewma_vol as a model"
    assert lines["why"] == "challenger tcn v1 rejected: does not beat ...; the honest forecast ..."
    text = daily_markdown({"as_of": "2023-12-29", "status": "completed", **lines}, None, None)
    assert f"- **Winner:** {lines['winner']}\n- **Why it won:** {lines['why']}\n" in text

    passed = Decision(True, ("beats the best baseline linear",))
    won = promotion_lines("stockml", challenger, passed, Promoted(challenger, passed), None)
    assert won["winner"] == "tcn (stockml v1), the challenger" and "passed every check" in won["why"]
    kept = promotion_lines("stockml", challenger, rejected, None, Champion(2, BASELINE_MODEL, {}))
    assert kept["winner"] == "unconditional (stockml v2), the champion, kept"
    assert kept["why"] == "challenger tcn rejected: does not beat the best baseline linear"
    assert "winner" not in promotion_lines("stockml", challenger, rejected, None, None)  # nothing published
