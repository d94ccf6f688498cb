"""The stockml command on the demo market and on the real sample: real files in, real files out."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from stockml.cli import main
from stockml.evaluation.report import build_report  # noqa: F401  (import cost paid once)


@pytest.mark.slow
def test_features_command_on_real_sample(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "features.parquet"
    code = main(
        [
            "features",
            "--source",
            "local",
            "--local-dir",
            str(sample_dir),
            "--data-dir",
            str(tmp_path / "lake"),
            "--start",
            "2020-01-01",
            "--end",
            "2024-12-31",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    frame = pd.read_parquet(out)
    labels = [c for c in frame.columns if c.startswith("label_")]
    assert labels == [f"label_h{h}" for h in range(1, 6)]
    assert frame["ts_code"].nunique() == 10
    assert frame["trade_date"].min() > pd.Timestamp("2020-01-02")  # warm-up rows dropped
    assert any(c.startswith("macro__") for c in frame.columns)
    # the last day's labels are unknown: nothing from after 2024-12-31 was invented
    assert frame.loc[frame["trade_date"] == frame["trade_date"].max(), "label_h1"].isna().all()


@pytest.mark.slow
def test_evaluate_command_writes_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKML_DEMO__START", "2021-01-04")
    out = tmp_path / "report.json"
    code = main(
        [
            "evaluate",
            "--source",
            "demo",
            "--data-dir",
            str(tmp_path / "lake"),
            "--models",
            "lstm",
            "--start",
            "2021-01-04",
            "--end",
            "2023-12-29",
            "--folds",
            "2",
            "--test-days",
            "40",
            "--max-epochs",
            "1",
            "--no-mlflow",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["horizon"] == 5 and report["quantiles"][3] == 0.5
    assert set(report["results"]) == {"lstm", "lstm.aci", "random_walk", "ewma_vol", "garch_t", "linear"}
    calibrated = report["results"]["lstm.aci"]["metrics"]  # online calibration moves spreads, not the median
    assert calibrated["rmse"] == report["results"]["lstm"]["metrics"]["rmse"]
    assert calibrated["coverage_90"] != report["results"]["lstm"]["metrics"]["coverage_90"]
    assert report["results"]["random_walk"]["kind"] == "baseline"
    assert report["results"]["lstm"]["kind"] == "model"
    assert report["results"]["random_walk"]["metrics"]["skill_crps"] == 0.0
    ns = {name: r["metrics"]["n"] for name, r in report["results"].items()}
    # the same rows for everyone; at most 8 symbols x 2 folds x 40 days (suspensions, unrealised labels)
    assert len(set(ns.values())) == 1 and 0.85 * 640 < ns["lstm"] <= 640
    for fold in report["folds"]:
        assert fold["train"][1] < fold["valid"][0] <= fold["valid"][1] < fold["test"][0]
    assert set(report["results"]["lstm"]["per_horizon"]) == {"1", "2", "3", "4", "5"}
    metrics = report["results"]["lstm"]["metrics"]
    assert 0.0 <= metrics["coverage_90"] <= 1.0 and metrics["width_90"] > 0
    assert report["data"]["symbols"] and report["data"]["rows"] > 0
    backtest = report["backtest"]  # each forecast's top-k book after costs
    assert (backtest["settings"]["top_k"], backtest["settings"]["drop_n"]) == (1, 1)  # 8 symbols
    assert set(backtest["results"]) == {"lstm", "random_walk", "ewma_vol", "garch_t", "linear"}
    rw = backtest["results"]["random_walk"]  # a zero median ranks nothing: the random book
    assert rw["total_return"] == pytest.approx(rw["random_total_return"]) and rw["n_days"] > 70


@pytest.mark.slow
def test_evaluate_logs_one_mlflow_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default store is ./mlruns
    monkeypatch.setenv("STOCKML_DEMO__START", "2021-01-04")
    out = tmp_path / "report.json"
    code = main(
        [
            "evaluate",
            "--source",
            "demo",
            "--data-dir",
            str(tmp_path / "lake"),
            "--models",
            "tcn",
            "--start",
            "2021-01-04",
            "--end",
            "2023-06-30",
            "--folds",
            "1",
            "--test-days",
            "30",
            "--max-epochs",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    run = client.get_run(report["mlflow_run_id"])
    assert run.data.metrics["tcn.crps"] == pytest.approx(report["results"]["tcn"]["metrics"]["crps"])
    assert run.data.metrics["random_walk.skill_crps"] == 0.0
    assert run.data.params["eval.models"] == '["tcn"]' and "lineage.lake_hashes.bars" in run.data.params
    files = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/report.json", "evaluation/predictions_tcn.parquet"} <= files
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    names = report["results"]  # tcn, tcn.aci and the baselines
    diagnostics = {f"plots/{kind}_{name}.png" for kind in ("pit", "coverage_by_fold") for name in names}
    assert "plots/pit_tcn.aci.png" in diagnostics and diagnostics <= plots
    kupiec = client.get_metric_history(run.info.run_id, "tcn.kupiec_p_95_by_fold")
    assert [m.value for m in kupiec] == pytest.approx([names["tcn"]["per_fold"][0]["kupiec_p_95"]])
    history = client.get_metric_history(run.info.run_id, "tcn.crps_by_horizon")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]
    book = report["backtest"]["results"]["tcn"]
    assert run.data.metrics["tcn.bt_annual_return"] == pytest.approx(book["annual_return"])
    assert run.data.metrics["linear.bt_max_drawdown"] <= 0.0
    assert "plots/backtest.png" in plots and "evaluation/backtest_daily.parquet" in files


def test_model_configs_from_the_command_line() -> None:
    from stockml.cli import _model_configs

    configs = _model_configs(['ensemble={"combine": "mean", "members": ["lightgbm", "lstm"]}', "lstm={}"])
    assert configs == {"ensemble": {"combine": "mean", "members": ["lightgbm", "lstm"]}, "lstm": {}}
    for bad in ("ensemble", "ensemble={combine}", "=[1]", "lstm=[1, 2]"):
        with pytest.raises(SystemExit, match="--model-config"):
            _model_configs([bad])
