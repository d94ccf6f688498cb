"""Same-day and lagged joins: sector peers, the market index, news sentiment.

All are point-in-time at the close of day t: same-day returns of other stocks and of the index are
known at the close; sentiment is lagged by ``config.sentiment_lag`` of the symbol's trading days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockml.columns import TRADE_DATE, TS_CODE
from stockml.features.panel import PanelIndex, panel_index
from stockml.features.returns import RET_1D
from stockml.features.vocab import UNKNOWN, Vocab

SECTOR_ID = "sector_id"


def sector_features(prices: pd.DataFrame, stock_basic: pd.DataFrame | None, vocab: Vocab) -> pd.DataFrame:
    """``sector_id`` (int64, 0 = unknown) and, with ``stock_basic``, ``sector_ret_ex_self``: the mean
    one-day log return of the other stocks of the same sector that day (0 with no peer)."""
    if stock_basic is None:
        return pd.DataFrame({SECTOR_ID: np.zeros(len(prices), dtype=np.int64)}, index=prices.index)
    industry = prices[TS_CODE].map(stock_basic.drop_duplicates(TS_CODE).set_index(TS_CODE)["industry"])
    sector = vocab.encode(industry)
    ret = prices[RET_1D].to_numpy(np.float64)
    has = np.isfinite(ret)
    keys = pd.DataFrame(
        {"d": prices[TRADE_DATE].to_numpy(), "s": sector, "r": np.where(has, ret, 0.0), "n": has}
    )
    grouped = keys.groupby(["d", "s"], sort=False)
    total = grouped["r"].transform("sum").to_numpy(np.float64)
    count = grouped["n"].transform("sum").to_numpy(np.float64)
    peers = count - has
    mean_ex = np.divide(total - keys["r"].to_numpy(), peers, out=np.zeros(len(keys)), where=peers > 0)
    mean_ex[sector == UNKNOWN] = 0.0
    return pd.DataFrame({SECTOR_ID: sector, "sector_ret_ex_self": mean_ex}, index=prices.index)


def index_returns(index_daily: pd.DataFrame, code: str) -> pd.DataFrame:
    """One index's daily log returns (from pct_chg, else close ratios; an index has no dividends
    to adjust for), indexed by trade_date, with the 5-day sum."""
    rows = index_daily.loc[index_daily[TS_CODE] == code].sort_values(TRADE_DATE)
    ret = np.log(rows["close"] / rows["close"].shift(1))
    if "pct_chg" in rows.columns:
        ret = np.log1p(rows["pct_chg"] / 100.0).fillna(ret)
    out = pd.DataFrame({"mkt_logret_1": ret.to_numpy(), "mkt_logret_5": ret.rolling(5).sum().to_numpy()})
    return out.set_index(
        pd.DatetimeIndex(rows[TRADE_DATE].astype("datetime64[ns]").to_numpy(), name=TRADE_DATE)
    )


def pick_index(index_daily: pd.DataFrame, wanted: str | None) -> str | None:
    """The configured index if present, else the first code in sorted order (reported in the summary)."""
    codes = sorted(index_daily[TS_CODE].unique())
    if not codes or wanted is None:
        return None
    return wanted if wanted in codes else codes[0]


def market_features(prices: pd.DataFrame, index_daily: pd.DataFrame, code: str) -> tuple[pd.DataFrame, int]:
    """Index returns joined on trade_date; a day the index lacks gets 0 (counted, returned)."""
    ret = index_returns(index_daily, code)
    joined = ret.reindex(pd.DatetimeIndex(prices[TRADE_DATE]))
    missing = int(joined["mkt_logret_1"].isna().sum())
    joined = joined.fillna(0.0)
    return pd.DataFrame(joined.to_numpy(), columns=joined.columns, index=prices.index), missing


def sentiment_features(
    prices: pd.DataFrame, sentiment: pd.DataFrame, lag: int, neutral: float, idx: PanelIndex | None = None
) -> pd.DataFrame:
    """Score of (ts_code, trade_date), used ``lag`` of the symbol's trading days later. Scores dated on
    non-trading days are ignored; a missing score -> ``neutral`` and ``sentiment_missing_flag`` = 1."""
    idx = idx if idx is not None else panel_index(prices)
    scores = sentiment.drop_duplicates([TS_CODE, TRADE_DATE], keep="last")
    joined = prices[[TS_CODE, TRADE_DATE]].merge(
        scores[[TS_CODE, TRADE_DATE, "score"]].assign(
            **{TRADE_DATE: scores[TRADE_DATE].astype("datetime64[ns]")}
        ),
        on=[TS_CODE, TRADE_DATE],
        how="left",
    )
    lagged = idx.to_long(idx.to_panel(joined["score"]).shift(lag))
    missing = ~np.isfinite(lagged)
    return pd.DataFrame(
        {
            "sentiment": np.where(missing, neutral, lagged),
            "sentiment_missing_flag": missing.astype(np.float64),
        },
        index=prices.index,
    )
