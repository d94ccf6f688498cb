"""The pandera schema of the feature frame: declared columns only, finite features, no NaN.

Labels may be NaN (the last H rows of each symbol have no future yet) but never infinite. Built by
a function because the feature list depends on the config and on which optional tables exist.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pandera.pandas as pa

from stockml.columns import TRADE_DATE, TS_CODE
from stockml.features.exogenous import SECTOR_ID
from stockml.features.labels import LABEL_PREFIX

KEY_COLUMNS = (TS_CODE, TRADE_DATE, SECTOR_ID)


def _finite(nullable: bool) -> pa.Check:
    if nullable:
        return pa.Check(
            lambda s: pd.Series(~np.isinf(s.to_numpy(np.float64)), index=s.index), name="not_infinite"
        )
    return pa.Check(lambda s: pd.Series(np.isfinite(s.to_numpy(np.float64)), index=s.index), name="finite")


def feature_schema(feature_columns: list[str], label_columns: list[str]) -> pa.DataFrameSchema:
    return _schema(tuple(feature_columns), tuple(label_columns))


@lru_cache(maxsize=16)
def _schema(feature_columns: tuple[str, ...], label_columns: tuple[str, ...]) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {
        TS_CODE: pa.Column(str, nullable=False),
        TRADE_DATE: pa.Column("datetime64[ns]", nullable=False, coerce=True),  # parquet may give [us]
        SECTOR_ID: pa.Column("int64", pa.Check.ge(0), nullable=False),
    }
    columns.update({c: pa.Column("float64", _finite(False), nullable=False) for c in feature_columns})
    columns.update({c: pa.Column("float64", _finite(True), nullable=True) for c in label_columns})
    return pa.DataFrameSchema(
        columns, strict=True, ordered=False, unique=[TS_CODE, TRADE_DATE], name="features"
    )


def validate_features(
    frame: pd.DataFrame, feature_columns: list[str], label_columns: list[str], inplace: bool = False
) -> pd.DataFrame:
    """Validate lazily (every failure listed); raises ``pandera.errors.SchemaErrors``.

    ``inplace=True`` skips pandera's copy (the pipeline validates the frame it has just built).
    """
    return feature_schema(feature_columns, label_columns).validate(frame, lazy=True, inplace=inplace)


def split_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(feature columns, label columns) of a feature frame, e.g. one read back from parquet."""
    labels = [c for c in frame.columns if c.startswith(LABEL_PREFIX)]
    features = [c for c in frame.columns if c not in KEY_COLUMNS and c not in labels]
    return features, labels


def feature_groups(feature_columns: list[str]) -> dict[str, list[int]]:
    """Family name -> column indices of ``x`` (families in order of their first column; a column no family
    claims goes to ``"other"``), for multi-branch models (see ``ModelSizes``)."""
    families = {
        "price": ("logret_", "amplitude"),
        "volume": ("vol_z", "amount_z", "turnover"),
        # realised vol (returns.py) and the EWMA family (vol_features.py); "vol_z" is volume, above
        "volatility": ("rv_", "vol_ewma", "downside_vol_", "vol_of_vol_", "ret_1_std"),
        "indicator": ("macd_", "kdj_", "boll_", "cci", "dmi_", "donchian_", "trix", "atr", "rsi"),
        "market": ("sector_", "mkt_"),
        "macro": ("macro__",),
        "sentiment": ("sentiment",),
    }
    groups: dict[str, list[int]] = {}
    for i, col in enumerate(feature_columns):
        family = next((name for name, prefixes in families.items() if col.startswith(prefixes)), "other")
        groups.setdefault(family, []).append(i)
    return groups
