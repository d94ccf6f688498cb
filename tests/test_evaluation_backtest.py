"""The backtest section of an evaluation (stockml.evaluation.backtest): what each forecast's book earned,
in the report, its JSON and the artifacts."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from report_helpers import SYMBOLS, synthetic_evaluation

from stockml.backtest.compare import book_config
from stockml.backtest.run import run_backtest
from stockml.evaluation.backtest import with_backtest
from stockml.evaluation.report import Evaluation
from stockml.evaluation.report_types import EvaluationReport
from stockml.evaluation.run import EvalRun, write_artifacts
from stockml.features import FeatureConfig, FeatureResult, Vocab
from stockml.sources.base import MarketData
from stockml.training.config import EvalConfig, TrainConfig

EVAL = EvalConfig(models=("lstm",), horizon=2, baselines=("random_walk", "ewma_vol"))


def _bars(seed: int = 1) -> pd.DataFrame:
    """Every symbol's bars over the synthetic report's dates: a random walk, open = the previous close."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=125)
    parts = []
    for code in SYMBOLS:
        close = 10.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, len(dates))))
        pre = np.concatenate([[10.0], close[:-1]])
        parts.append(
            pd.DataFrame(
                {
                    "ts_code": code,
                    "trade_date": dates,
                    "open": pre,
                    "close": close,
                    "pre_close": pre,
                    "vol": 1e5,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def backtested() -> Evaluation:
    return with_backtest(synthetic_evaluation(), MarketData(bars=_bars()), EVAL)


def test_every_model_and_baseline_is_backtested_with_the_default_book(backtested: Evaluation) -> None:
    section = backtested.report.backtest
    assert section is not None
    assert set(section.results) == {"random_walk", "ewma_vol", "lstm"}  # not the extra seed lstm.seed1
    assert set(backtested.backtests) == set(section.results)
    # six names: top a fifth of them (1), drop a sixth of that (at least 1)
    assert (section.settings["top_k"], section.settings["drop_n"]) == (1, 1)
    assert section.settings["costs"]["commission_bp"] == 2.5
    # the same numbers as a backtest of the model's predictions on its own
    alone = run_backtest(backtested.predictions["lstm"], _bars(), book_config(backtested.predictions["lstm"]))
    assert section.results["lstm"]["annual_return"] == pytest.approx(alone.metrics["annual_return"])
    pd.testing.assert_frame_equal(backtested.backtests["lstm"], alone.daily)
    # a zero-median baseline ranks nothing: its book is the random one
    rw = section.results["random_walk"]
    assert rw["total_return"] == pytest.approx(rw["random_total_return"])
    assert section.results["lstm"]["total_return"] != pytest.approx(rw["total_return"])


def test_the_section_survives_the_report_json(backtested: Evaluation) -> None:
    report = backtested.report
    again = EvaluationReport.from_dict(report.to_dict())
    assert again == report
    assert list(report.to_dict())[-1] == "backtest"  # after the results, before a run id


def test_switched_off_there_is_no_section() -> None:
    evaluation = synthetic_evaluation()
    off = with_backtest(evaluation, MarketData(bars=_bars()), EVAL.model_copy(update={"backtest": False}))
    assert off.report.backtest is None and off.backtests == {}
    assert "backtest" not in off.report.to_dict()


def test_artifacts_hold_the_daily_books_and_the_equity_plot(backtested: Evaluation, tmp_path: Path) -> None:
    features = FeatureResult(pd.DataFrame(), ["x"], ["label_h1", "label_h2"], Vocab(name="sector", tokens=()))
    run = EvalRun(features, FeatureConfig(horizon=2), EVAL, TrainConfig(), [], backtested)
    parts = write_artifacts(tmp_path, run)
    daily = pd.read_parquet(parts["evaluation"] / "backtest_daily.parquet")
    assert set(daily["name"]) == {"random_walk", "ewma_vol", "lstm"}
    np.testing.assert_allclose(
        daily.loc[daily["name"] == "lstm", "value"].to_numpy(),
        backtested.backtests["lstm"]["value"].to_numpy(),
    )
    image = matplotlib.image.imread(parts["plots"] / "backtest.png")
    assert image.shape[0] > 400 and image[..., :3].std() > 0.05
