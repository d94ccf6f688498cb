"""An ensemble champion served with its online calibration from the registry: ``stockml train`` registers it
(the bundle carries the calibration its walk-forward ended in), the daily flow publishes its forecasts, learns
from their outcomes on a later day and stores what it learned on the registry version, and ``stockml predict``
in a fresh process serves exactly what the flow published. Real lake, MLflow store and registry, Prefect."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stockml.cli import main

START = "2021-06-01"
TRAIN_END = "2023-12-15"
DAY1 = dt.date(2023, 12, 21)  # its five target days (12-22 .. 12-28) are all known on DAY2
DAY2 = dt.date(2023, 12, 29)
QCOLS = ["q0.05", "q0.1", "q0.25", "q0.5", "q0.75", "q0.9", "q0.95"]


def _predict(tmp: Path, *extra: str) -> pd.DataFrame:
    """``stockml predict`` of the champion at DAY2 in a fresh process, from the daily flow's history (the
    EWMA features depend slightly on where the history starts)."""
    out = tmp / f"predict{'_'.join(extra)}.parquet"
    command = [sys.executable, "-m", "stockml.cli", "predict", "--source", "demo"]
    command += ["--data-dir", str(tmp / "lake"), "--model-uri", "models:/stockml@champion"]
    command += ["--as-of", DAY2.isoformat(), "--out", str(out), "--history-days", "730", *extra]
    env = {**os.environ, "STOCKML_DEMO__START": START}
    done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_parquet(out).sort_values(["ts_code", "horizon"], ignore_index=True)


@pytest.mark.slow
def test_an_ensemble_champion_is_served_with_its_learned_calibration(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from flows.daily import daily_retrain
    from stockml.evaluation.calibration import AciState
    from stockml.registry.tracking import TrackingConfig, load_forecaster

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STOCKML_DEMO__START", START)
    lake = tmp_path / "lake"
    train = ["train", "--source", "demo", "--data-dir", str(lake), "--models", "ensemble"]
    train += ["--start", START, "--end", TRAIN_END, "--folds", "1", "--test-days", "30", "--max-epochs", "1"]
    assert main(train) == 0
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    version = client.get_model_version("stockml", "1")
    assert version.tags["stockml.model_name"] == "ensemble"
    client.set_registered_model_alias("stockml", "champion", "1")  # as if it had passed the gate
    forecaster = load_forecaster(TrackingConfig(), "models:/stockml/1").unwrap_python_model().forecaster
    assert forecaster.model.cfg.members == ("lightgbm", "cnn_lstm")  # one bundle carries both members
    bundled = forecaster.calibration
    assert bundled is not None and all(d is not None and d <= TRAIN_END for d in bundled.through)

    days = {}
    for day in (DAY1, DAY2):  # lstm must beat the champion by 99% CRPS: the ensemble stays champion
        state = daily_retrain(
            as_of=day,
            source="demo",
            data_dir=lake,
            mlruns_dir=tmp_path / "mlruns",
            models=["lstm"],
            max_epochs=1,
            margin=0.99,
            return_state=True,
        )
        days[day] = state.result(raise_on_failure=False)
        assert days[day]["champion"] == "stockml v1 (ensemble)", days[day]
    first = days[DAY1]["calibration"]
    assert first.startswith("online (ACI") and f"through {bundled.through[0]}" in first
    learned = AciState.from_json(client.get_model_version("stockml", "1").tags["stockml.calibration"])
    assert learned.through == (DAY1.isoformat(),) * 5  # DAY1's five horizons, all known on DAY2
    assert learned.phi != bundled.phi
    assert f"through {DAY1}" in days[DAY2]["calibration"]

    published = pd.read_parquet(days[DAY2]["predictions"])
    published = published.sort_values(["ts_code", "horizon"], ignore_index=True)
    served, raw = _predict(tmp_path), _predict(tmp_path, "--raw")
    assert (published["model_version"] == 1).all() and len(served) == 8 * 5
    np.testing.assert_allclose(served[QCOLS], published[QCOLS], rtol=1e-6)  # flow and CLI serve the same
    np.testing.assert_allclose(served[QCOLS], learned.apply(raw)[QCOLS], rtol=1e-12)  # the learned state
    np.testing.assert_array_equal(served["q0.5"], raw["q0.5"])
    assert not np.allclose(served[QCOLS], raw[QCOLS])
