"""Prefect tasks around the lake, besides ingesting: reads, lineage and published forecasts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from prefect import task

from stockml.sources.base import MarketData
from stockml.store import lake as store
from stockml.store.lake import Lake
from tasks import PLAIN


@task(name="read-market", **PLAIN)
def read_market(lake: Lake, start: dt.date, end: dt.date, symbols: list[str] | None) -> MarketData:
    return store.read_market(lake, start, end, symbols)


@task(name="bars-hash", **PLAIN)
def bars_hash(lake: Lake, start: dt.date, end: dt.date, symbols: list[str] | None) -> str:
    return store.bars_hash(lake, start, end, symbols)


@task(name="lake-lineage", **PLAIN)
def lineage(lake: Lake, as_of: dt.date) -> dict:
    return store.lake_lineage(lake, as_of)


@task(name="lake-summary", **PLAIN)
def summary(lake: Lake) -> dict:
    return store.lake_summary(lake)


@task(name="has-forecast", **PLAIN)
def has_forecast(lake: Lake, as_of: dt.date, name: str) -> bool:
    return lake.predictions_path(as_of, name).exists()


@task(name="write-predictions", **PLAIN)
def write_predictions(lake: Lake, preds: pd.DataFrame, as_of: dt.date, name: str = "daily") -> Path:
    return lake.write_predictions(preds, as_of, name)


@task(name="read-published", **PLAIN)
def published(lake: Lake, version: int, name: str = "daily") -> pd.DataFrame:
    """The forecasts of registry version ``version`` published in the lake (empty when none)."""
    preds = lake.read_predictions(name)
    return preds[preds["model_version"] == version] if "model_version" in preds else preds.iloc[:0]


@task(name="previous-portfolio", **PLAIN)
def previous_portfolio(lake: Lake, as_of: dt.date) -> pd.DataFrame | None:
    return lake.previous_portfolio(as_of)


@task(name="write-portfolio", **PLAIN)
def write_portfolio(lake: Lake, book: pd.DataFrame, as_of: dt.date) -> Path:
    return lake.write_portfolio(book, as_of)
