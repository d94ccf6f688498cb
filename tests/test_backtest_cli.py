"""`stockml backtest --report`: every model of an evaluation run backtested on the lake's bars, from the
run's out-of-sample predictions in MLflow. A forecast that knows the next day's return earns more than one
that ranks the other way round; extra seeds are not books of their own."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
from test_tracking import cfg  # noqa: F401  (fixture: a fresh store under tmp_path)

from stockml.cli import main
from stockml.registry.tracking import TrackingConfig, log_run
from stockml.sources.demo import DemoConfig, DemoSource
from stockml.store.ingest import ingest_range
from stockml.store.lake import Lake

START, END = dt.date(2023, 1, 2), dt.date(2023, 6, 30)
LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


def _predictions(bars: pd.DataFrame, sign: float) -> pd.DataFrame:
    """Horizon-1 quantiles centred on ``sign`` times the realised next-day log return, last 60 dates."""
    wide = bars.pivot(index="trade_date", columns="ts_code", values="close")
    nxt = np.log(wide.shift(-1) / wide).iloc[-61:-1]
    long = nxt.stack().rename("median").reset_index().rename(columns={"trade_date": "date"})
    out = long[["ts_code", "date"]].assign(horizon=1)
    for q in LEVELS:
        out[f"q{q}"] = sign * long["median"] + (q - 0.5) * 0.04
    return out


def test_backtest_reads_an_evaluation_run_and_ranks_its_models(
    cfg: TrackingConfig,  # noqa: F811
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path / "lake")
    source = DemoSource(DemoConfig(n_symbols=6, start=START, end=END))
    ingest_range(lake, source, "demo:test", START, END, None)
    bars = lake.read("bars")
    folder = tmp_path / "evaluation"
    folder.mkdir()
    for name, sign in (("knows", 1.0), ("backwards", -1.0), ("knows.seed1", -1.0)):
        _predictions(bars, sign).to_parquet(folder / f"predictions_{name}.parquet", index=False)
    run_id = log_run(cfg, run_name="evaluate", artifacts={"evaluation": folder})
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"mlflow_run_id": run_id}))
    out = tmp_path / "backtest.csv"
    args = ["backtest", "--report", str(report), "--data-dir", str(lake.root), "--top-k", "2"]
    args += ["--drop-n", "1", "--tracking-uri", cfg.resolved_tracking_uri(), "--out", str(out)]
    assert main(args) == 0
    table = pd.read_csv(out, index_col="name")
    assert sorted(table.index) == ["backwards", "knows"]  # the extra seed is not a book
    assert table.loc["knows", "annual_return"] > 0.5 > table.loc["backwards", "annual_return"]
    assert table.loc["knows", "annual_return"] <= table.loc["knows", "perfect_annual_return"] + 1e-9
    assert (table["cost_drag"] > 0).all() and (table["turnover"] > 0).all()
