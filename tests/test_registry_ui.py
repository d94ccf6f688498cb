"""What the MLflow UI shows: the registered model and every version described in words (windows, scores,
the gate's decision and reasons), and each evaluation run's lake tables as dataset inputs."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from mlflow import MlflowClient
from report_helpers import synthetic_evaluation
from test_bundle import feature_frame, saved_bundle
from test_tracking import cfg  # noqa: F401  (fixture: a fresh store under tmp_path)

from stockml.evaluation.run import lake_datasets
from stockml.registry import tags as T
from stockml.registry.descriptions import (
    GATE_HEADING,
    describe_version,
    served,
    with_decision,
)
from stockml.registry.promotion import Decision
from stockml.registry.tracking import (
    MAX_DESCRIPTION_LENGTH,
    DatasetRef,
    TrackingConfig,
    describe_model,
    log_run,
    register_bundle,
    set_version_description,
    version_description,
)


def test_a_version_description_says_what_it_is_and_how_it_was_gated() -> None:
    report = synthetic_evaluation().report
    text = describe_version(report, "lstm", {"hidden_size": 8}, (dt.date(2022, 1, 3), dt.date(2022, 4, 22)))
    metrics = report.results[served(report, "lstm")].metrics
    assert text.startswith('**lstm** `{"hidden_size": 8}`') and "horizons 1..2" in text
    assert "- Training window: 2022-01-03..2022-04-22\n" in text
    window = T.format_window(*report.test_window)
    assert f"- Evaluation window (out of sample): {window} (2 walk-forward folds)\n" in text
    assert f"CRPS {metrics['crps']:.6f}, skill vs random walk {metrics['skill_crps']:+.4f}" in text
    assert f"coverage_90 {metrics['coverage_90']:.3f}, Kupiec p {metrics['kupiec_p_95']:.3f}" in text
    refit = describe_version(report, "lstm", None, (dt.date(2022, 1, 3), dt.date(2022, 6, 1)), refit_of="4")
    assert "2022-01-03..2022-06-01 (refit of v4 on every labelled day)" in refit and "`{}`" in refit

    reasons = ("coverage_90 0.900 inside [0.85, 0.95]", "does not beat it")
    rejected = Decision(False, reasons, reasons[1:])
    gated = with_decision(text, rejected, compared_with=3)
    assert gated == f"{text}\n\n{GATE_HEADING} rejected (against champion v3)\n\n" + (
        "- coverage_90 0.900 inside [0.85, 0.95]\n- does not beat it"
    )
    regated = with_decision(gated, Decision(True, ("beats it",)))  # replaces the earlier decision
    assert regated == f"{text}\n\n{GATE_HEADING} promoted\n\n- beats it"
    assert with_decision("", rejected).startswith(f"{GATE_HEADING} rejected\n")


def test_lake_datasets_come_from_the_lineage() -> None:
    lineage = {"lake_hashes": {"bars": "h1", "adj_factor": "h2"}, "as_of": "2024-01-02", "lake_root": "/d/"}
    assert lake_datasets(lineage) == [
        DatasetRef("adj_factor", "h2", "/d/adj_factor"),
        DatasetRef("bars", "h1", "/d/bars"),
    ]
    replay = {"bars_hash": "h3", "as_of": "2024-01-02"}  # the replay's lineage: its window's bars
    assert lake_datasets(replay) == [DatasetRef("bars", "h3", "lake/bars")]
    assert lake_datasets({}) == []


def test_the_model_is_described_once_and_each_version_on_its_own(
    cfg: TrackingConfig,  # noqa: F811
    tmp_path: Path,
) -> None:
    frame = feature_frame()
    bundle = saved_bundle(tmp_path / "v1", frame, config={"hidden_size": 8, "embedding_dim": 2})
    first = register_bundle(cfg, bundle, model_name="demo", description="v1 text", model_description="what")
    second = register_bundle(cfg, bundle, model_name="demo", description="v2 text", model_description="else")
    client = MlflowClient(cfg.resolved_tracking_uri())
    assert client.get_registered_model("demo").description == "what"  # kept: set when it was created
    assert [version_description(cfg, "demo", v) for v in (first, second)] == ["v1 text", "v2 text"]

    set_version_description(cfg, "demo", second, "x" * (MAX_DESCRIPTION_LENGTH + 10))
    assert version_description(cfg, "demo", second) == "x" * MAX_DESCRIPTION_LENGTH
    describe_model(cfg, "demo", "replaced", replace=True)
    assert client.get_registered_model("demo").description == "replaced"


def test_a_logged_run_lists_its_datasets_as_inputs(cfg: TrackingConfig, tmp_path: Path) -> None:  # noqa: F811
    lake = tmp_path / "lake"
    refs = [DatasetRef("bars", "f5ed6748e8e23c52", f"{lake}/bars"), DatasetRef("trade_cal", "0a1b", "lake/x")]
    run_id = log_run(cfg, run_name="evaluate", metrics={"mae": 0.1}, datasets=refs)
    client = MlflowClient(cfg.resolved_tracking_uri())
    inputs = client.get_run(run_id).inputs.dataset_inputs
    found = {i.dataset.name: (i.dataset.digest, json.loads(i.dataset.source)["uri"]) for i in inputs}
    assert found == {"bars": ("f5ed6748e8e23c52", f"{lake}/bars"), "trade_cal": ("0a1b", "lake/x")}
    assert {(t.key, t.value) for i in inputs for t in i.tags} == {("mlflow.data.context", "walk-forward")}
    assert client.get_run(log_run(cfg, run_name="no-data")).inputs.dataset_inputs == []
