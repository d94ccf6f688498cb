"""akshare's (Eastmoney's) daily bars -> the lake's canonical bars and a tushare-style ``adj_factor``.

``stock_zh_a_hist(adjust="")`` answers one row per day with Chinese columns: 日期 (a date), 股票代码,
开盘, 收盘, 最高, 最低, 成交量 (lots of 100 shares), 成交额 (CNY), 振幅, 涨跌幅 (%), 涨跌额, 换手率.
Mapped as tushare's ``daily`` is: raw unadjusted prices; ``vol`` in lots (unchanged); ``amount`` in
thousand CNY (成交额 / 1000); ``pct_chg`` = 涨跌幅; ``change`` = 涨跌额; ``pre_close`` = 收盘 - 涨跌额, i.e.
the exchange's ex-rights previous close, as tushare's (not the previous row's close, which is wrong on
ex-dividend days and unknown on a fetch's first row).

The adjustment factor is computed from the unadjusted rows, as tushare computes its own: 1.0 on the first
bar of the history, times ``close[t-1] / pre_close[t]`` on every ex-rights day (where the two differ). It
is not taken from akshare's ``hfq``/``qfq`` prices because Eastmoney adjusts additively: its docs' own
sample has qfq = raw - 1.35 and hfq = 162.5 * raw + 33.1 for 000001 in 2017, so hfq / raw is no constant
between events and hfq returns understate real ones (2024-05-27: hfq +1.56 %, raw +1.77 %).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockml import columns as C
from stockml.sources.codes import to_ts_code
from stockml.sources.tushare_format import parse_dates

# akshare's column -> canonical column (values kept as read; the gate parses them).
HIST_COLUMNS = {
    "日期": C.TRADE_DATE,
    "开盘": "open",
    "最高": "high",
    "最低": "low",
    "收盘": "close",
    "涨跌额": "change",
    "涨跌幅": "pct_chg",
    "成交量": "vol",
}
AMOUNT = "成交额"  # CNY; the lake's amount is in thousand CNY
CODE = "股票代码"
# Columns without which a response is reported and left out: the gate's required ones, and 涨跌额
# (pre_close and the adjustment factor come from it).
NEEDED = ("日期", "开盘", "最高", "最低", "收盘", "成交量", AMOUNT, "涨跌额")
# Half the smallest price tick (0.001 CNY): a previous close and an ex-rights pre_close further apart than
# this mark an ex-rights day; closer ones are float noise.
_EX_RIGHTS_TOLERANCE = 0.0005


def bars_from_hist(raw: pd.DataFrame, symbol: str, source_file: str) -> pd.DataFrame:
    """One ``stock_zh_a_hist`` response -> canonical bars with provenance (rows in response order).

    Only what the units require is computed (amount / 1000, pre_close); a cell that is not a number is
    kept as read, so that the gate reports it with its row.
    """
    out = pd.DataFrame(
        {canon: raw[col] for col, canon in HIST_COLUMNS.items() if col in raw.columns}, index=raw.index
    )
    code = raw[CODE] if CODE in raw.columns else pd.Series(symbol, index=raw.index)
    out.insert(0, C.TS_CODE, code.map({c: to_ts_code(c) for c in code.unique()}))
    if C.TRADE_DATE in out:
        out[C.TRADE_DATE] = out[C.TRADE_DATE].astype(str)  # a date (or NaT) -> "2024-01-02"
    if AMOUNT in raw.columns:
        out["amount"] = _scaled(raw[AMOUNT], 1e-3)
    if {"close", "change"} <= set(out.columns):
        close, change = (pd.to_numeric(out[c], errors="coerce") for c in ("close", "change"))
        out["pre_close"] = (close - change).round(4)
    cols = [c for c in C.BAR_COLS if c in out.columns]
    return (
        out[cols]
        .assign(**{C.SOURCE_FILE: source_file, C.SOURCE_ROW: np.arange(len(out), dtype=np.int64)})
        .reset_index(drop=True)
    )


def adj_factor_from_bars(bars: pd.DataFrame, anchor: str = "hfq") -> pd.DataFrame:
    """Tushare-style adjustment factors of one symbol's whole history of canonical bars.

    ``anchor="hfq"``: 1.0 on the first bar (tushare's convention), so a day's factor never changes when
    later history is added. ``"qfq"``: the same factors divided by the last bar's (1.0 on the newest day,
    akshare's qfq convention); ratios, hence returns, are identical. A day without ``pre_close`` counts as
    no event. Rows keep their provenance; rows with unparseable dates get no factor (the gate reports them).
    """
    dates = parse_dates(bars[C.TRADE_DATE])
    order = np.argsort(dates.to_numpy(), kind="stable")  # NaT sorts last
    close = pd.to_numeric(bars["close"], errors="coerce").to_numpy(np.float64)[order]
    pre = pd.to_numeric(bars["pre_close"], errors="coerce").to_numpy(np.float64)[order]
    prev = np.r_[np.nan, close[:-1]]
    event = np.abs(prev - pre) > _EX_RIGHTS_TOLERANCE  # False where either is NaN
    step = np.where(event, prev / np.where(event, pre, 1.0), 1.0)
    factor_sorted = np.cumprod(step)
    valid = dates.notna().to_numpy()[order]
    if anchor == "qfq" and valid.any():
        factor_sorted = factor_sorted / factor_sorted[np.flatnonzero(valid)[-1]]
    factor = np.empty_like(factor_sorted)
    factor[order] = factor_sorted
    factor[~dates.notna().to_numpy()] = np.nan
    return pd.DataFrame(
        {
            C.TS_CODE: bars[C.TS_CODE],
            C.TRADE_DATE: bars[C.TRADE_DATE],
            "adj_factor": factor,
            C.SOURCE_FILE: bars[C.SOURCE_FILE],
            C.SOURCE_ROW: bars[C.SOURCE_ROW],
        }
    )


def stock_basic_from_listing(raw: pd.DataFrame, source_file: str) -> tuple[pd.DataFrame, list[str]]:
    """``stock_info_a_code_name`` (columns ``code``, ``name``) -> stock_basic rows, and the codes that
    map to no exchange (reported by the caller). Industry and dates are not in the listing: left empty."""
    codes, names, rows, unknown = [], [], [], []
    for i, (code, name) in enumerate(zip(raw["code"], raw["name"], strict=True)):
        try:
            codes.append(to_ts_code(code))
        except ValueError:
            unknown.append(str(code))
            continue
        names.append(name)
        rows.append(i)
    frame = pd.DataFrame(
        {
            C.TS_CODE: codes,
            "name": names,
            "industry": None,
            "list_date": None,
            "delist_date": None,
            C.SOURCE_FILE: source_file,
            C.SOURCE_ROW: np.asarray(rows, dtype=np.int64),
        }
    )
    return frame, unknown


def _scaled(raw: pd.Series, factor: float) -> pd.Series:
    """Numbers times ``factor``; a cell that is not a number is kept as read for the gate to report."""
    number = pd.to_numeric(raw, errors="coerce")
    return (number * factor).astype(object).where(number.notna() | raw.isna(), raw)
