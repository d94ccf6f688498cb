"""Canonical column names and table keys, defined once for the whole project.

Every table in the lake is a long frame. Tushare's raw names are mapped onto these in exactly one
place (:mod:`stockml.sources.tushare_format`).
"""

from __future__ import annotations

TS_CODE = "ts_code"
TRADE_DATE = "trade_date"

# Provenance columns carried from the reader to the validation gate, dropped before the lake.
SOURCE_FILE = "source_file"
SOURCE_ROW = "source_row"
PROVENANCE = (SOURCE_FILE, SOURCE_ROW)

BAR_COLS = (
    TS_CODE,
    TRADE_DATE,
    "open",
    "high",
    "low",
    "close",
    "pre_close",
    "change",
    "pct_chg",  # percent, e.g. -2.09 for -2.09 %
    "vol",  # lots (100 shares)
    "amount",  # thousand CNY
)

ADJ_COLS = (TS_CODE, TRADE_DATE, "adj_factor")
INDEX_COLS = (TS_CODE, TRADE_DATE, "open", "high", "low", "close", "pre_close", "pct_chg", "vol", "amount")
STOCK_BASIC_COLS = (TS_CODE, "name", "industry", "list_date", "delist_date")
SENTIMENT_COLS = (TS_CODE, TRADE_DATE, "score")
# Macro is stored long: one row per (table, series, period). ``period_end`` is the last day the value
# describes (month end for monthly tables, the observation day for daily ones); the publication lag is
# applied by the feature pipeline, never here.
MACRO_COLS = ("table", "series", "freq", "period_end", "value")
CALENDAR_COLS = ("exchange", "cal_date", "is_open")

# Table name -> key columns for upserts.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "bars": (TS_CODE, TRADE_DATE),
    "adj_factor": (TS_CODE, TRADE_DATE),
    "index_daily": (TS_CODE, TRADE_DATE),
    "sentiment": (TS_CODE, TRADE_DATE),
    "stock_basic": (TS_CODE,),
    "macro": ("table", "series", "period_end"),
    "trade_cal": ("exchange", "cal_date"),
}
# Column that orders a table in time and names its lake partitions (None: one file).
TABLE_TIME_COL: dict[str, str | None] = {
    "bars": TRADE_DATE,
    "adj_factor": TRADE_DATE,
    "index_daily": TRADE_DATE,
    "sentiment": TRADE_DATE,
    "stock_basic": None,
    "macro": None,
    "trade_cal": None,
}


# Columns a file must have; the others are optional and become NaN when absent.
REQUIRED: dict[str, tuple[str, ...]] = {
    "bars": ("ts_code", "trade_date", "open", "high", "low", "close", "vol", "amount"),
    "adj_factor": ("ts_code", "trade_date", "adj_factor"),
    "index_daily": ("ts_code", "trade_date", "close"),
    "stock_basic": ("ts_code",),
    "sentiment": ("ts_code", "trade_date", "score"),
    "macro": ("table", "series", "freq", "period_end", "value"),
    "trade_cal": ("exchange", "cal_date", "is_open"),
}


def quantile_column(q: float, prefix: str = "q") -> str:
    """Column of quantile level ``q``: ``0.05 -> "q0.05"``; with a prefix ``price_q0.05``."""
    return f"{prefix}{q:g}"
