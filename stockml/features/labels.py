"""Labels: the ONLY module that reads the future (a test greps the package to keep it so).

``label_h{k}`` at day t is the log return of the adjusted close from t to the symbol's k-th next
trading day: ``log(adj_close[t+k] / adj_close[t])``, cumulative, not a one-day return. Rows whose
horizon runs past the symbol's last bar get NaN. Targets stay raw log returns (small, symmetric,
additive over days); prices for reporting come back through :func:`prices_from_log_returns`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockml.features.panel import PanelIndex, panel_index
from stockml.features.returns import LOG_LEVEL

LABEL_PREFIX = "label_"


def label_columns(horizon: int) -> list[str]:
    return [f"{LABEL_PREFIX}h{k}" for k in range(1, horizon + 1)]


def forward_log_returns(prices: pd.DataFrame, horizon: int, idx: PanelIndex | None = None) -> pd.DataFrame:
    """``label_h1..label_hH`` on the index of ``prices`` (the output of ``adjust_prices``)."""
    idx = idx if idx is not None else panel_index(prices)
    level = idx.to_panel(prices[LOG_LEVEL])
    # Padding after a symbol's last row is NaN, so a horizon past the end is NaN.
    cols = {
        name: idx.to_long(level.shift(-k) - level) for k, name in enumerate(label_columns(horizon), start=1)
    }
    return pd.DataFrame(cols, index=prices.index)


def prices_from_log_returns(base_price: np.ndarray, log_returns: np.ndarray) -> np.ndarray:
    """Price path ``base * exp(y_h)`` for cumulative log returns ``(..., H)`` from a base ``(...)``.

    With the raw close of day t as base, the path is in day t's share terms (ex-dividend moves after
    t are already in the adjusted returns).
    """
    return np.asarray(base_price, dtype=np.float64)[..., None] * np.exp(
        np.asarray(log_returns, dtype=np.float64)
    )
