"""Validated lake tables -> the point-in-time feature frame (before normalisation), with labels.

Every feature value at day t uses only rows dated t or earlier (macro: released by t); labels come
from :mod:`stockml.features.labels`, the one module that looks forward. Families: returns and realised
vol, volatility (EWMA sigma, its log, downside vol, vol of vol, standardised return), indicators,
sector, market, sentiment, and macro in ``config.macro_mode`` (standardised changes by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from stockml.columns import PROVENANCE, TRADE_DATE, TS_CODE
from stockml.features.config import FeatureConfig
from stockml.features.exogenous import (
    SECTOR_ID,
    market_features,
    pick_index,
    sector_features,
    sentiment_features,
)
from stockml.features.frame_schema import validate_features
from stockml.features.indicators import indicator_features
from stockml.features.labels import forward_log_returns, label_columns
from stockml.features.macro import macro_features, macro_summary
from stockml.features.panel import panel_index
from stockml.features.returns import adjust_prices, return_features
from stockml.features.vocab import Vocab, fit_sector_vocab
from stockml.features.vol_features import volatility_features
from stockml.sources.base import MarketData


@dataclass(frozen=True)
class FeatureResult:
    """The feature frame (keys, features, ``label_h1..label_hH``), its column lists and a run summary."""

    frame: pd.DataFrame
    feature_columns: list[str]
    label_columns: list[str]
    sector_vocab: Vocab
    summary: dict[str, object] = field(default_factory=dict)


def _clean(frame: pd.DataFrame, col: str = TRADE_DATE) -> pd.DataFrame:
    """Without provenance columns, dates as datetime64[ns]."""
    frame = frame.drop(columns=[c for c in PROVENANCE if c in frame.columns])
    return frame.assign(**{col: frame[col].astype("datetime64[ns]")})


def build_feature_frame(
    data: MarketData, config: FeatureConfig, sector_vocab: Vocab | None = None
) -> FeatureResult:
    """Features + labels for every bar, warm-up rows dropped, validated against the feature schema.

    ``sector_vocab``: pass the one saved with a trained model so ids match; by default it is fitted
    on ``stock_basic``'s industries. Raises ``pandera.errors.SchemaErrors`` listing every bad value.
    """
    adj = None if data.adj_factor is None else _clean(data.adj_factor)
    prices = adjust_prices(_clean(data.bars), adj)
    idx = panel_index(prices)
    keep = idx.pos >= config.warmup
    vocab = sector_vocab if sector_vocab is not None else fit_sector_vocab(data.stock_basic)
    parts = [
        return_features(prices, config, idx),
        volatility_features(prices, config, idx),
        indicator_features(prices, config, idx),
        sector_features(prices, data.stock_basic, vocab),
    ]
    used = ["bars"] + [t for t in ("adj_factor", "stock_basic") if getattr(data, t) is not None]
    summary: dict[str, object] = {"market_index": None, "sentiment": None}
    if data.index_daily is not None and (code := pick_index(data.index_daily, config.market_index)):
        market, missing_days = market_features(prices, _clean(data.index_daily), code)
        parts.append(market)
        used.append("index_daily")
        summary.update(market_index=code, index_missing_rows=missing_days)
    if data.sentiment is not None:
        sent = sentiment_features(
            prices, _clean(data.sentiment), config.sentiment_lag, config.sentiment_neutral, idx
        )
        parts.append(sent)
        used.append("sentiment")
        summary["sentiment"] = {
            "lag": config.sentiment_lag,
            "missing_fraction": float(sent.iloc[:, 1].mean()),
        }
    macro_series: list[dict[str, object]] = []
    if data.macro is not None:
        dates = pd.DatetimeIndex(np.unique(prices[TRADE_DATE].to_numpy()))
        kept = prices.loc[keep, TRADE_DATE]
        first_out = kept.min() if len(kept) else None  # series are chosen on what was known then
        per_date, selected = macro_features(_clean(data.macro, "period_end"), dates, config, first_out)
        rows = per_date.index.get_indexer(prices[TRADE_DATE])
        parts.append(pd.DataFrame(per_date.to_numpy()[rows], columns=per_date.columns, index=prices.index))
        macro_series = macro_summary(per_date, data.macro, selected)
        used += ["macro"] if selected else []
    labels = forward_log_returns(prices, config.horizon, idx)
    features = pd.concat(parts, axis=1)
    feature_cols = [c for c in features.columns if c != SECTOR_ID]
    frame = (
        pd.concat([prices[[TS_CODE, TRADE_DATE]], features, labels], axis=1).loc[keep].reset_index(drop=True)
    )
    frame = frame.astype({SECTOR_ID: np.int64, **{c: np.float64 for c in feature_cols}})
    label_cols = label_columns(config.horizon)
    validate_features(frame, feature_cols, label_cols, inplace=True)
    summary.update(
        tables_used=used,
        rows_in=len(prices),
        rows_out=len(frame),
        warmup_rows=config.warmup,
        warmup_rows_dropped=int((~keep).sum()),
        symbols_in=idx.n_syms,
        symbols_out=int(frame[TS_CODE].nunique()),
        date_range=[str(d.date()) for d in (frame[TRADE_DATE].min(), frame[TRADE_DATE].max())]
        if len(frame)
        else [],
        return_sources={str(k): int(v) for k, v in prices["_ret_source"].value_counts().items()},
        macro_series=macro_series,
        n_features=len(feature_cols),
        feature_columns=feature_cols,
        label_columns=label_cols,
        sector_vocab_size=vocab.size,
    )
    return FeatureResult(frame, feature_cols, label_cols, vocab, summary)
