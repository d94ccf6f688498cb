"""`stockml train`, then `stockml predict` in a fresh process: real lake, MLflow store and registry."""

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

AS_OF = "2023-06-30"


@pytest.mark.slow
def test_train_registers_gates_and_predict_loads_in_a_fresh_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default store is ./mlruns
    monkeypatch.setenv("STOCKML_DEMO__START", "2021-01-04")
    common = ["--source", "demo", "--data-dir", str(tmp_path / "lake")]
    code = main(
        [
            "train",
            *common,
            "--models",
            "lstm,lightgbm",
            "--start",
            "2021-01-04",
            "--end",
            AS_OF,
            "--folds",
            "2",
            "--test-days",
            "30",
            "--max-epochs",
            "1",
            "--refit",
            "--coverage-band",
            "0.0",
            "1.0",
            "--out",
            str(tmp_path / "report.json"),
        ]
    )
    assert code == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    v1 = client.get_model_version_by_alias("stockml", "challenger")
    assert int(v1.version) == 1 and v1.tags["stockml.model_name"] in {"lstm", "lightgbm"}
    # One epoch on the demo market is no evidence of skill over the best baseline: the gate rejects the
    # challenger and, with no champion yet, the volatility baseline (``unconditional``, v2) is champion.
    reasons = v1.tags["stockml.promotion_reasons"]
    assert v1.tags["stockml.promotion"] == "rejected" and "does not beat the best baseline" in reasons
    assert "Kupiec's test" in reasons and "coverage_90" in reasons
    run_id = v1.run_id
    artifacts = {
        a.path
        for folder in ("features", "plots", "evaluation", "importances")
        for a in client.list_artifacts(run_id, folder)
    }
    assert {
        "features/norm_params.json",
        "features/feature_list.json",
        "features/symbol_vocab.json",
        "features/sector_vocab.json",
        "plots/calibration_lstm.png",
        "plots/calibration_random_walk.png",
        "evaluation/predictions_lstm.parquet",
        "evaluation/report.json",
        "importances/lightgbm.json",
    } <= artifacts
    assert sum(p.startswith("plots/fan_lstm_") for p in artifacts) == 3
    folds = client.get_metric_history(run_id, "lstm.crps_by_fold")
    assert len(folds) == 2 and len({m.step for m in folds}) == 2
    baseline = client.get_model_version("stockml", "2")
    assert baseline.tags["stockml.model_name"] == "unconditional"
    assert baseline.tags["stockml.promotion"] == "promoted"
    why = baseline.tags["stockml.promotion_reasons"]
    assert f"challenger {v1.tags['stockml.model_name']} v1 rejected" in why and "honest forecast" in why
    # --refit: what won is refitted on every labelled day and becomes the champion, the reasons kept
    champion = client.get_model_version_by_alias("stockml", "champion")
    assert int(champion.version) == 3 and champion.tags["stockml.refit_of"] == "2"
    assert champion.tags["stockml.model_name"] == "unconditional"
    assert champion.tags["stockml.promotion_reasons"] == baseline.tags["stockml.promotion_reasons"]
    assert champion.tags["stockml.train_end"] > baseline.tags["stockml.train_end"]

    out = tmp_path / "preds.parquet"
    env = {**os.environ, "STOCKML_DEMO__START": "2021-01-04"}
    predict = [sys.executable, "-m", "stockml.cli", "predict", *common, "--model-uri"]
    predict += ["models:/stockml@challenger", "--as-of", AS_OF, "--out", str(out)]
    done = subprocess.run(predict, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    preds = pd.read_parquet(out)
    assert preds["ts_code"].nunique() == 8 and sorted(preds["horizon"].unique()) == [1, 2, 3, 4, 5]
    assert (preds["as_of"] == dt.date(2023, 6, 30)).all()
    qcols = [c for c in preds.columns if c.startswith("q0")]
    assert len(qcols) == 7 and (np.diff(preds[qcols].to_numpy(), axis=1) >= 0).all()
    targets = pd.to_datetime(preds.sort_values(["ts_code", "horizon"])["target_date"]).head(5)
    assert list(targets.dt.date) == [dt.date(2023, 7, d) for d in (3, 4, 5, 6, 7)]
    assert (preds["price_q0.5"] > 0).all()
