"""The MLflow adapter against a real SQLite store and local artifacts in a temporary folder."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from test_bundle import QCOLS, feature_frame, saved_bundle

from stockml.registry.bundle import load_bundle
from stockml.registry.tracking import (
    MAX_PARAM_LENGTH,
    TrackingConfig,
    clean_metrics,
    configure,
    flatten_params,
    get_alias_version,
    git_commit,
    load_forecaster,
    log_run,
    pip_requirements,
    register_bundle,
    set_alias,
    start_run,
)


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TrackingConfig]:
    """A fresh store under tmp_path; MLflow's process-wide state is restored afterwards."""
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID"):
        monkeypatch.setenv(var, "")  # remember the original value, then remove it for the test
        monkeypatch.delenv(var)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")  # nothing may land in the working directory
    yield TrackingConfig(root=tmp_path / "store", experiment="unit")
    mlflow.set_tracking_uri(None)


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    code = "import sys, stockml.registry.tracking; print('mlflow' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"
    assert list(tmp_path.iterdir()) == []


def test_config_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    local = TrackingConfig()
    assert local.resolved_tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert local.resolved_artifact_root() == (tmp_path / "mlruns" / "artifacts").as_uri()
    assert not local.is_remote and not (tmp_path / "mlruns").exists()  # resolving creates nothing
    remote = TrackingConfig(tracking_uri="http://127.0.0.1:5000")
    assert remote.is_remote and remote.resolved_tracking_uri() == "http://127.0.0.1:5000"
    assert remote.resolved_artifact_root() is None
    s3 = TrackingConfig(tracking_uri="http://mlflow:5000", artifact_root="s3://bucket/stockml")
    assert s3.resolved_artifact_root() == "s3://bucket/stockml"
    rel = TrackingConfig(artifact_root="art")
    assert rel.resolved_artifact_root() == (tmp_path / "art").as_uri()


def test_flatten_params_and_clean_metrics() -> None:
    flat = flatten_params(
        {"model": {"name": "lstm", "cfg": {"hidden": 8}}, "q": (0.1, 0.5), "long": "x" * 7000, "n": None}
    )
    assert flat == {
        "model.name": "lstm",
        "model.cfg.hidden": "8",
        "q": "[0.1, 0.5]",
        "long": "x" * MAX_PARAM_LENGTH,
        "n": "None",
    }
    assert clean_metrics({"a": 1, "b": float("nan"), "c": None, "d": np.float32(0.5)}) == {"a": 1.0, "d": 0.5}


def test_git_commit(tmp_path: Path) -> None:
    assert git_commit(tmp_path) is None  # not a repository
    commit = git_commit()
    assert commit is None or len(commit) == 40
    assert all(r.count("==") == 1 and "+" not in r for r in pip_requirements())


def test_log_run_round_trip(cfg: TrackingConfig, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    (reports / "plots").mkdir(parents=True)
    (reports / "summary.md").write_text("# ok")
    (reports / "plots" / "a.txt").write_text("a")
    single = tmp_path / "folds.csv"
    single.write_text("fold,mae\n0,0.4\n")

    run_id = log_run(
        cfg,
        run_name="eval-lstm",
        params={"model": {"name": "lstm", "hidden_size": 8}, "quantiles": (0.1, 0.5, 0.9)},
        metrics={"mae": 0.5, "crps": float("nan"), "skipped": None},
        step_metrics=[("fold_mae", 0.4, 0), ("fold_mae", 0.6, 1), ("fold_mae", math.nan, 2)],
        tags={"flow": "evaluate"},
        artifacts={"reports": reports, "": single},
        started_at=time.time() - 90,  # the training it records began 90 s ago
    )

    client = MlflowClient(cfg.resolved_tracking_uri())
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "eval-lstm"
    assert 90_000 <= run.info.end_time - run.info.start_time < 150_000  # the UI's duration is the work's
    assert run.data.params == {"model.name": "lstm", "model.hidden_size": "8", "quantiles": "[0.1, 0.5, 0.9]"}
    assert run.data.metrics == {"mae": 0.5, "fold_mae": 0.6}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "fold_mae")] == [(0, 0.4), (1, 0.6)]
    assert run.data.tags["flow"] == "evaluate"
    assert run.data.tags.get("git_commit") == git_commit()
    assert {a.path for a in client.list_artifacts(run_id)} == {"reports", "folds.csv"}
    assert {a.path for a in client.list_artifacts(run_id, "reports")} == {
        "reports/plots",
        "reports/summary.md",
    }

    experiment = client.get_experiment(configure(cfg))
    assert experiment.name == "unit"
    assert experiment.artifact_location == (cfg.root / "artifacts").resolve().as_uri()
    assert (cfg.root / "artifacts" / run_id / "artifacts" / "reports" / "plots" / "a.txt").read_text() == "a"
    assert list(Path.cwd().iterdir()) == []

    child = log_run(cfg, run_name="fold-0", metrics={"mae": 0.4}, parent_run_id=run_id)
    assert client.get_run(child).data.tags["mlflow.parentRunId"] == run_id
    with start_run(cfg, run_name="outer") as outer:
        inner = log_run(cfg, run_name="inner", nested=True)
    assert client.get_run(inner).data.tags["mlflow.parentRunId"] == outer

    with pytest.raises(RuntimeError, match="boom"), start_run(cfg, run_name="broken") as broken:
        raise RuntimeError("boom")
    assert client.get_run(broken).info.status == "FAILED"


def test_register_alias_and_load_champion(cfg: TrackingConfig, tmp_path: Path) -> None:
    frame = feature_frame()
    first = saved_bundle(tmp_path / "v1", frame, config={"hidden_size": 8, "embedding_dim": 2})
    second = saved_bundle(tmp_path / "v2", frame, config={"hidden_size": 6, "embedding_dim": 2})
    with start_run(cfg, run_name="train") as train_run:  # the run is active
        v1 = register_bundle(cfg, first, model_name="demo", run_id=train_run, alias="challenger")
    eval_run = log_run(cfg, run_name="evaluate", metrics={"mae": 0.1})  # a finished run, resumed
    v2 = register_bundle(
        cfg, second, model_name="demo", run_id=eval_run, alias="champion", tags={"note": "retrained"}
    )
    assert (v1, v2) == (1, 2)
    assert register_bundle(cfg, first, model_name="other") == 1  # no run at all
    assert get_alias_version(cfg, "demo", "champion") == 2
    assert get_alias_version(cfg, "demo", "challenger") == 1
    assert get_alias_version(cfg, "demo", "nope") is None
    assert get_alias_version(cfg, "no-such-model", "champion") is None

    client = MlflowClient(cfg.resolved_tracking_uri())
    assert [client.get_run(r).info.status for r in (train_run, eval_run)] == ["FINISHED", "FINISHED"]
    version1, version2 = client.get_model_version("demo", "1"), client.get_model_version("demo", "2")
    assert (version1.run_id, version2.run_id) == (train_run, eval_run)
    assert version2.tags["stockml.model_name"] == "lstm" and version2.tags["note"] == "retrained"
    assert version2.tags["stockml.train_end"] == "2021-04-30"

    # The registered version carries the whole bundle, norm params included.
    local = Path(mlflow.artifacts.download_artifacts("models:/demo/2", dst_path=str(tmp_path / "dl")))
    norm = json.loads((local / "artifacts" / "bundle" / "norm_params.json").read_text())
    assert norm == json.loads((second / "norm_params.json").read_text())
    requirements = (local / "requirements.txt").read_text().split()
    assert requirements == pip_requirements()

    champion = load_forecaster(cfg, "models:/demo@champion")
    expected = load_bundle(second).predict(frame)
    pd.testing.assert_frame_equal(champion.predict(frame), expected)
    day = str(frame["trade_date"].sort_values().iloc[-30].date())
    pd.testing.assert_frame_equal(
        champion.predict(frame, params={"as_of": day}), load_bundle(second).predict(frame, as_of=day)
    )
    challenger = load_forecaster(cfg, "models:/demo@challenger").predict(frame)
    assert not np.allclose(challenger[QCOLS].to_numpy(), expected[QCOLS].to_numpy())

    set_alias(cfg, "demo", "champion", 1)
    assert get_alias_version(cfg, "demo", "champion") == 1
    pd.testing.assert_frame_equal(load_forecaster(cfg, "models:/demo@champion").predict(frame), challenger)
