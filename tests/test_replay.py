"""Replay backfill: point-in-time forecasts per day, cached retrains, and a rerun that trains nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest


@pytest.mark.slow
def test_replay_forecasts_each_day_and_a_rerun_trains_nothing(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from flows.replay import replay
    from stockml.config import load_settings
    from stockml.sources.factory import make_source
    from stockml.store.ingest import ingest_range
    from stockml.store.lake import Lake

    monkeypatch.setenv("STOCKML_DEMO__START", "2021-06-01")
    monkeypatch.setenv("STOCKML_DEMO__SIGNAL_STRENGTH", "1.0")
    monkeypatch.chdir(tmp_path)
    lake_dir = tmp_path / "lake"
    settings = load_settings(source="demo", data_dir=lake_dir)
    ingest_range(
        Lake(lake_dir), make_source(settings), "demo", dt.date(2021, 6, 1), dt.date(2023, 12, 29), None, 400
    )
    params = dict(
        start=dt.date(2023, 12, 18),
        end=dt.date(2023, 12, 29),
        source="demo",
        data_dir=lake_dir,
        models=["tcn"],
        retrain_every=5,
        max_epochs=3,
        coverage_band=(0.0, 1.0),  # the evidence against the best baseline and Kupiec's test decide
        mlruns_dir=tmp_path / "mlruns",
    )
    first = replay(**params)
    assert first["days"] == 10 and first["retrain_days"] == ["2023-12-18", "2023-12-25"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    versions = {v.version for v in client.search_model_versions("name='stockml-replay'")}
    # Each retrain registers its challenger; tcn never beats the best baseline (linear) with t >= 2, so the
    # first retrain, with no champion yet, also registers the volatility baseline as champion (v2).
    assert len(versions) == 3
    champion = client.get_model_version("stockml-replay", "2")
    assert champion.tags["stockml.model_name"] == "unconditional"
    folder = lake_dir / "predictions" / "replay"
    written = sorted(folder.glob("*.parquet"))
    assert first["forecast_days_written"] == len(written)
    preds = pd.concat([pd.read_parquet(f) for f in written])
    # each day is forecast by the version its latest retrain day produced, trained on data up to then
    assert (pd.to_datetime(preds["retrained_on"]) <= pd.to_datetime(preds["as_of"])).all()
    assert (
        preds.groupby("as_of")["ts_code"].nunique().eq(8).all() and (preds["model_role"] == "champion").all()
    )
    assert (preds["model_version"] == 2).all()  # the baseline forecasts every day: nothing beat it

    removed = written[-3:]
    for f in removed:
        f.unlink()
    again = replay(**params)
    assert again["forecast_days_written"] == 3 and again["forecast_days_skipped"] == len(written) - 3
    assert all(f.exists() for f in removed)
    assert {
        v.version for v in client.search_model_versions("name='stockml-replay'")
    } == versions  # no training
