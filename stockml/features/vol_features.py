"""Volatility features per symbol from the one-day log return, all causal (day t uses returns <= t).

* ``vol_ewma``: the RiskMetrics EWMA sd ``sigma_t`` of :func:`~stockml.features.volatility.ewma_volatility`
  in daily-return units (also the trainer's target scale: keep the name);
* ``vol_ewma_log_xs``: ``log(sigma_t)``; the ``_xs`` suffix makes the normaliser use cross-symbol
  statistics, so the volatility level survives normalisation;
* ``downside_vol_<n>``: ``sqrt(mean(min(r, 0)**2))`` over the last n returns;
* ``vol_of_vol_<n>``: the sd over the last n days of ``log(rv_5)`` (5-day realised vol, floored);
* ``ret_1_std``: ``r_t / sigma_{t-1}``, today's return in units of the volatility known before it.

Realised vol at the ``vol_windows`` (``rv_<w>``) lives in :mod:`stockml.features.returns`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockml.features.config import VOL_OF_VOL_BASE_DAYS, FeatureConfig
from stockml.features.panel import PanelIndex, panel_index
from stockml.features.returns import RET_1D
from stockml.features.volatility import SIGMA_FLOOR, ewma_volatility

VOL_EWMA = "vol_ewma"
VOL_EWMA_LOG = "vol_ewma_log_xs"
RET_STD = "ret_1_std"


def vol_feature_columns(config: FeatureConfig) -> list[str]:
    """Names of the columns :func:`volatility_features` returns, in order."""
    return [
        VOL_EWMA,
        VOL_EWMA_LOG,
        f"downside_vol_{config.downside_window}",
        f"vol_of_vol_{config.vol_of_vol_window}",
        RET_STD,
    ]


def volatility_features(
    prices: pd.DataFrame, config: FeatureConfig, idx: PanelIndex | None = None
) -> pd.DataFrame:
    """EWMA sigma and its log, downside vol, vol of vol and the standardised return (see module doc).

    ``prices`` is the output of :func:`~stockml.features.returns.adjust_prices`. Returns a new frame on
    the same index; NaN where a window is not yet full (the pipeline's warm-up drops those rows).
    """
    idx = idx if idx is not None else panel_index(prices)
    ret = idx.to_panel(prices[RET_1D])  # (rows, symbols), each symbol over its own trading days
    sigma = ewma_volatility(ret, config.ewma_lambda, config.ewma_seed_days)
    downside = np.sqrt((ret.clip(upper=0.0) ** 2).rolling(config.downside_window).mean())
    log_rv = np.log(ret.rolling(VOL_OF_VOL_BASE_DAYS).std().clip(lower=SIGMA_FLOOR))
    vol_of_vol = log_rv.rolling(config.vol_of_vol_window).std()
    standardised = ret / sigma.shift(1)
    values = [sigma, np.log(sigma), downside, vol_of_vol, standardised]
    return pd.DataFrame(
        {name: idx.to_long(v) for name, v in zip(vol_feature_columns(config), values, strict=True)},
        index=prices.index,
    )
