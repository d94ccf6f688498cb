"""The daily flow's target book: the backtest's strategy applied to the champion's forecast."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import task

from stockml.backtest.compare import book_config
from stockml.backtest.target import target_portfolio
from tasks import PLAIN


@task(name="target-portfolio", **PLAIN)
def target_book(forecast: pd.DataFrame, previous: pd.DataFrame | None, as_of: dt.date) -> pd.DataFrame:
    """Tomorrow's book in the evaluation's default size (a fifth of the universe, drop a sixth of it)."""
    return target_portfolio(forecast, previous, book_config(forecast).strategy, as_of)
