"""The typed evaluation report: the JSON it writes is the documented layout, and it reads back equal."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from feature_helpers import synthetic_market
from report_helpers import synthetic_evaluation

from stockml.evaluation.report import build_report
from stockml.evaluation.report_types import EvaluationReport, FoldInfo
from stockml.features import FeatureConfig, build_feature_frame
from stockml.serving.daily_report import daily_markdown
from stockml.training.config import EvalConfig, TrainConfig
from stockml.training.walkforward import run_walk_forward

# The report of report_helpers.synthetic_evaluation, first written by the dict-building report code the typed
# report replaced. After a deliberate layout change (as when per_fold gained coverage_50/80 and kupiec_p_95),
# regenerate it from tests/ and check in the diff that only the intended keys changed:
#   python -c "import json, report_helpers as h; print(json.dumps(h.synthetic_evaluation().report.to_dict(),
#   indent=1))" > data/report_synthetic.json
GOLDEN = Path(__file__).parent / "data" / "report_synthetic.json"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synthetic() -> EvaluationReport:
    return synthetic_evaluation().report


@pytest.fixture(scope="module")
def pipeline() -> EvaluationReport:
    """A real report: features of a synthetic market, walk-forward baselines, two folds."""
    market = synthetic_market(n_symbols=4, n_days=420, seed=3)
    features = build_feature_frame(market, FeatureConfig(horizon=2))
    cfg = EvalConfig(
        models=(),
        horizon=2,
        folds=2,
        test_days=20,
        valid_days=20,
        min_train_days=150,
        baselines=("random_walk", "ewma_vol"),
    )
    outputs = run_walk_forward(
        features.frame,
        features.feature_columns,
        features.label_columns,
        cfg,
        TrainConfig(progress=False, device="cpu"),
        features.sector_vocab.size,
    )
    info = {"source": "synthetic", "symbols": ["a"], "start": "2021-01-04", "end": "2022-08-01", "rows": 0}
    closes = market.bars[["ts_code", "trade_date", "close"]]
    labels = features.label_columns
    return build_report(
        outputs, features.frame, labels, closes, data_info=info, horizon=2, quantiles=cfg.quantiles
    ).report


def _flat(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a JSON-like value as (path, value), containers as (path, their kind and size)."""
    if isinstance(value, dict):
        yield path, f"dict[{len(value)}]"
        for key, item in value.items():
            yield from _flat(item, f"{path}/{key}")
    elif isinstance(value, list):
        yield path, f"list[{len(value)}]"
        for i, item in enumerate(value):
            yield from _flat(item, f"{path}/{i}")
    else:
        yield path, value


def test_to_dict_is_what_the_dict_built_report_was(synthetic: EvaluationReport) -> None:
    actual, expected = list(_flat(synthetic.to_dict())), list(_flat(json.loads(GOLDEN.read_text())))
    assert [p for p, _ in actual] == [p for p, _ in expected]  # same keys, in the same order
    assert [type(v) for _, v in actual] == [type(v) for _, v in expected]
    floats = [i for i, (_, v) in enumerate(expected) if isinstance(v, float)]
    assert len(floats) > 400
    assert [actual[i][1] for i in floats] == pytest.approx([expected[i][1] for i in floats], rel=1e-9)
    others = set(range(len(expected))) - set(floats)  # strings, ints, None, container sizes
    assert [actual[i][1] for i in sorted(others)] == [expected[i][1] for i in sorted(others)]


def test_the_typed_fields_hold_the_report(synthetic: EvaluationReport) -> None:
    r = synthetic
    assert list(r.results) == ["random_walk", "ewma_vol", "lstm", "lstm.seed1"]
    assert [res.kind for res in r.results.values()] == ["baseline", "baseline", "model", "seed"]
    assert r.best_baseline == "random_walk" and r.horizon == 2 and r.quantiles[3] == 0.5
    assert r.data.rows == 720 and r.data.extra == {"data_hash": "abc123"}
    assert r.folds[0].valid == ("2022-03-30", "2022-04-20") and r.folds[1].valid is None
    assert r.test_window == ("2022-04-25", "2022-06-15")
    lstm, seed1 = r.results["lstm"], r.results["lstm.seed1"]
    assert set(lstm.per_horizon) == {1, 2} and lstm.per_horizon[1] == lstm.metrics
    assert [f.fold for f in lstm.per_fold] == [0, 1] and sum(
        f.metrics["n"] or 0 for f in lstm.per_fold
    ) == 228
    assert lstm.vs_baselines["random_walk"].skill_crps == lstm.metrics["skill_crps"]
    assert r.results["random_walk"].seeds is None and seed1.seeds is None
    assert lstm.seeds is not None and lstm.seeds.n == 2
    crps = [lstm.metrics["crps"], seed1.metrics["crps"]]
    assert lstm.seeds.mean["crps"] == pytest.approx(np.mean(crps))
    assert lstm.seeds.sd["crps"] == pytest.approx(np.std(crps, ddof=1))


@pytest.mark.parametrize("which", ["synthetic", "pipeline"])
def test_from_dict_reads_back_what_to_dict_wrote(which: str, request: pytest.FixtureRequest) -> None:
    report: EvaluationReport = request.getfixturevalue(which)
    assert EvaluationReport.from_dict(report.to_dict()) == report
    text = json.dumps(report.to_dict(), indent=2, default=str)  # as report.json is written
    assert EvaluationReport.from_dict(json.loads(text)) == report
    logged = report.with_run_id("abc")
    assert list(logged.to_dict())[-1] == "mlflow_run_id" and "mlflow_run_id" not in report.to_dict()
    assert EvaluationReport.from_dict(json.loads(json.dumps(logged.to_dict()))).mlflow_run_id == "abc"


def test_a_real_report_keeps_each_folds_feature_shift(pipeline: EvaluationReport) -> None:
    assert len(pipeline.folds) == 2 and all(isinstance(f, FoldInfo) for f in pipeline.folds)
    shift = pipeline.folds[0].feature_shift
    assert len(shift) > 10 and all(isinstance(v, float) for v in shift.values())
    assert abs(next(iter(shift.values()))) == max(abs(v) for v in shift.values())  # largest first
    assert pipeline.to_dict()["folds"][0]["feature_shift"] == shift


def test_bench_prints_a_saved_report(
    synthetic: EvaluationReport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(synthetic.to_dict(), indent=2, default=str))
    spec = importlib.util.spec_from_file_location("bench_skill", ROOT / "bench" / "skill.py")
    assert spec is not None and spec.loader is not None
    skill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(skill)
    assert skill.main(["--report", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[1:5]] == [
        ["random_walk", "baseline"],
        ["ewma_vol", "baseline"],
        ["lstm", "model"],
        ["seeds", "n=2:"],
    ]
    assert lines[3].split()[-1] == "6.0"  # train seconds summed over 2 seeds x 2 folds x 1.5 s
    assert lines[-1] == "best baseline: random_walk; 2 folds, test 2022-04-25 .. 2022-06-15, 720 feature rows"


def test_daily_markdown_shows_the_reports_window_and_rows(synthetic: EvaluationReport) -> None:
    text = daily_markdown({"as_of": "2022-06-30", "status": "completed"}, synthetic, None)
    assert "## Out-of-sample metrics (horizon 1, test window 2022-04-25 .. 2022-06-15)" in text
    assert "| lstm | model | 0.0062 |" in text and "| lstm.seed1 | seed |" in text


def test_daily_markdown_shows_the_target_book_as_research_output(synthetic: EvaluationReport) -> None:
    book = pd.DataFrame(
        {
            "ts_code": ["000002.SZ", "000001.SZ"],
            "weight": [0.5, 0.0],
            "score": [0.0123, -0.004],
            "rank": [1.0, 6.0],
            "reason": ["buy: rank 1 of 6", "sell: rank 6 of 6, outside the top 1"],
        }
    )
    summary = {"as_of": "2022-06-30", "status": "completed", "portfolio": "lake/portfolios/daily/x.parquet"}
    text = daily_markdown(summary, synthetic, None, book)
    assert "## Target portfolio for the next session (research output, not investment advice)" in text
    assert "| 000002.SZ | 50.0% | +0.01230 | buy: rank 1 of 6 |" in text
    assert "| 000001.SZ | 0.0% | -0.00400 | sell: rank 6 of 6, outside the top 1 |" in text
    assert "- **Target portfolio:** lake/portfolios/daily/x.parquet" in text


def test_models_are_compared_with_each_other_on_the_same_rows() -> None:
    """With a second model every model gets ``vs_models``: its CRPS skill and t against each other model
    (never against an extra seed); the pair's skills mirror each other through their CRPS."""
    report = synthetic_evaluation(extra={"tcn": (0.1, 0.016)}).report
    lstm, tcn = report.results["lstm"], report.results["tcn"]
    assert lstm.vs_models is not None and tcn.vs_models is not None
    assert set(lstm.vs_models) == {"tcn"} and set(tcn.vs_models) == {"lstm"}
    assert report.results["lstm.seed1"].vs_models is None
    crps_l, crps_t = lstm.metrics["crps"], tcn.metrics["crps"]
    assert lstm.vs_models["tcn"].skill_crps == pytest.approx(1 - crps_l / crps_t)
    assert tcn.vs_models["lstm"].skill_crps == pytest.approx(1 - crps_t / crps_l)
    assert lstm.vs_models["tcn"].skill_crps > 0 and lstm.vs_models["tcn"].t > 2  # 0.3 of the truth beats 0.1
    assert lstm.vs_models["tcn"].t == pytest.approx(-tcn.vs_models["lstm"].t)
    again = EvaluationReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.results["lstm"].vs_models == lstm.vs_models
