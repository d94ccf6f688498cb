"""Pandera schemas of the lake tables, defined once.

Schemas see frames whose values were already parsed by :func:`stockml.store.validation.parse_table`
(unparseable cells are reported there), so every check here is about values, not formats.
Schemas are built by functions because "not in the future" depends on the run's date.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pandera.pandas as pa

TS_CODE_PATTERN = r"^\d{6}\.(SH|SZ|BJ)$"
# Yahoo-style tickers of a source beyond A-shares (yfinance): AAPL, BRK-B, ^GSPC, EURUSD=X, 0700.HK,
# and A-shares under their lake code.
TICKER_PATTERN = r"^\^?[A-Z0-9][A-Z0-9.\-=]{0,19}$"
CODE_PATTERNS = {"a_share": TS_CODE_PATTERN, "ticker": TICKER_PATTERN}
# stock_basic also lists long-delisted securities under tushare's legacy codes (e.g. TS0018.SH);
# they are reference rows, never bars, so the sector table accepts them.
LEGACY_CODE_PATTERN = r"^[0-9A-Z]{6}\.(SH|SZ|BJ)$"

# Column -> parsed kind, per table: what parse_table converts before the schema runs.
NUMERIC = "numeric"
DATE = "date"
TEXT = "text"
TABLE_TYPES: dict[str, dict[str, str]] = {
    "bars": {
        "ts_code": TEXT,
        "trade_date": DATE,
        "open": NUMERIC,
        "high": NUMERIC,
        "low": NUMERIC,
        "close": NUMERIC,
        "pre_close": NUMERIC,
        "change": NUMERIC,
        "pct_chg": NUMERIC,
        "vol": NUMERIC,
        "amount": NUMERIC,
    },
    "adj_factor": {"ts_code": TEXT, "trade_date": DATE, "adj_factor": NUMERIC},
    "index_daily": {
        "ts_code": TEXT,
        "trade_date": DATE,
        "open": NUMERIC,
        "high": NUMERIC,
        "low": NUMERIC,
        "close": NUMERIC,
        "pre_close": NUMERIC,
        "pct_chg": NUMERIC,
        "vol": NUMERIC,
        "amount": NUMERIC,
    },
    "stock_basic": {"ts_code": TEXT, "name": TEXT, "industry": TEXT, "list_date": DATE, "delist_date": DATE},
    "sentiment": {"ts_code": TEXT, "trade_date": DATE, "score": NUMERIC},
    "macro": {"table": TEXT, "series": TEXT, "freq": TEXT, "period_end": DATE, "value": NUMERIC},
    "trade_cal": {"exchange": TEXT, "cal_date": DATE, "is_open": NUMERIC},
}


def _code(pattern: str = TS_CODE_PATTERN) -> pa.Column:
    return pa.Column(str, pa.Check.str_matches(pattern), nullable=False)


def _day(today: dt.date, nullable: bool = False) -> pa.Column:
    return pa.Column(
        "datetime64[ns]", pa.Check.le(pd.Timestamp(today), error="not in the future"), nullable=nullable
    )


def _num(*checks: pa.Check, nullable: bool = True) -> pa.Column:
    return pa.Column(float, list(checks), nullable=nullable)


# Row-wise price rules: check name -> (lower column, upper column).
OHLC_RULES: dict[str, tuple[str, str]] = {
    "low <= open": ("low", "open"),
    "low <= close": ("low", "close"),
    "open <= high": ("open", "high"),
    "close <= high": ("close", "high"),
    "low <= high": ("low", "high"),
}


def _ohlc_checks() -> list[pa.Check]:
    # Element-wise frame checks so the report names each failing row. NaN rows are reported by
    # the column checks, so they pass here.
    def rule(lo: str, hi: str, name: str) -> pa.Check:
        return pa.Check(lambda d: ~(d[lo] > d[hi]), error=name, name=name)

    return [rule(lo, hi, name) for name, (lo, hi) in OHLC_RULES.items()]


def table_schema(table: str, today: dt.date, codes: str = "a_share") -> pa.DataFrameSchema:
    """The schema of one lake table, judged as of ``today``; ``codes``: the ts_code shape (CODE_PATTERNS)
    of the dated tables."""
    pattern = CODE_PATTERNS[codes]
    positive = pa.Check.gt(0)
    non_negative = pa.Check.ge(0)
    if table in ("bars", "index_daily"):
        required_price = table == "bars"
        columns = {
            "ts_code": _code(pattern),
            "trade_date": _day(today),
            "open": _num(positive, nullable=not required_price),
            "high": _num(positive, nullable=not required_price),
            "low": _num(positive, nullable=not required_price),
            "close": _num(positive, nullable=False),
            "pre_close": _num(positive),
            "pct_chg": _num(),
            "vol": _num(non_negative, nullable=not required_price),
            "amount": _num(non_negative, nullable=not required_price),
        }
        if table == "bars":
            columns["change"] = _num()
        return pa.DataFrameSchema(
            columns, checks=_ohlc_checks(), unique=["ts_code", "trade_date"], name=table, strict=False
        )
    if table == "adj_factor":
        columns = {
            "ts_code": _code(pattern),
            "trade_date": _day(today),
            "adj_factor": _num(positive, nullable=False),
        }
        return pa.DataFrameSchema(columns, unique=["ts_code", "trade_date"], name=table, strict=False)
    if table == "sentiment":
        columns = {"ts_code": _code(pattern), "trade_date": _day(today), "score": _num(nullable=False)}
        return pa.DataFrameSchema(columns, unique=["ts_code", "trade_date"], name=table, strict=False)
    if table == "stock_basic":
        columns = {
            "ts_code": _code(LEGACY_CODE_PATTERN),
            "name": pa.Column(str, nullable=True),
            "industry": pa.Column(str, nullable=True),
            "list_date": _day(today, nullable=True),
            "delist_date": pa.Column("datetime64[ns]", nullable=True),
        }
        return pa.DataFrameSchema(columns, unique=["ts_code"], name=table, strict=False)
    if table == "macro":
        columns = {
            "table": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
            "series": pa.Column(str, pa.Check.str_length(min_value=1), nullable=False),
            "freq": pa.Column(str, pa.Check.isin(["M", "D"]), nullable=False),
            "period_end": _day(today),
            "value": _num(nullable=False),
        }
        return pa.DataFrameSchema(columns, unique=["table", "series", "period_end"], name=table, strict=False)
    if table == "trade_cal":
        columns = {
            "exchange": pa.Column(str, nullable=False),
            "cal_date": pa.Column("datetime64[ns]", nullable=False),
            "is_open": _num(pa.Check.isin([0.0, 1.0]), nullable=False),
        }
        return pa.DataFrameSchema(columns, unique=["exchange", "cal_date"], name=table, strict=False)
    raise KeyError(f"no schema for table {table!r}")
