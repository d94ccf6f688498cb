"""The daily flow on a local Dask cluster through prefect-dask: the per-model tasks run on Dask workers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from test_daily_flow import AS_OF, demo_env  # noqa: F401  (fixture)


@pytest.mark.slow
def test_daily_flow_on_a_local_dask_cluster(prefect_harness: None, demo_env: Path) -> None:  # noqa: F811
    from flows.daily import with_task_runner

    flow_fn = with_task_runner("dask", cluster_kwargs={"n_workers": 2, "threads_per_worker": 1})
    state = flow_fn(
        as_of=AS_OF,
        source="demo",
        data_dir=demo_env / "lake",
        mlruns_dir=demo_env / "mlruns",
        models=["lstm", "tcn"],
        max_epochs=3,
        coverage_band=(0.0, 1.0),
        return_state=True,
    )
    assert state.is_completed(), state.message
    summary = state.result()
    assert summary["failed_models"] == {}
    assert summary["challenger"].endswith(("(lstm)", "(tcn)"))
    preds = pd.read_parquet(summary["predictions"])
    assert preds["ts_code"].nunique() == 8 and (preds["as_of"] == dt.date(2023, 12, 29)).all()
