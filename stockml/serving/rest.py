"""The JSON body of a REST request to a registered model served by ``mlflow models serve``.

The server's ``/invocations`` takes ``{"dataframe_split": {"columns": [...], "data": [[...], ...]},
"params": {...}}``: the frame reaches the pyfunc's ``predict`` as a DataFrame (dates as text, which
:meth:`~stockml.registry.bundle.Forecaster.predict` parses) and ``params`` as its params. The answer is
``{"predictions": [one record per symbol and horizon]}``, dates as ISO text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from stockml.columns import TRADE_DATE, TS_CODE
from stockml.features.exogenous import SECTOR_ID
from stockml.features.panel import sort_long
from stockml.registry.bundle import CLOSE, Forecaster


def request_body(
    forecaster: Forecaster, frame: pd.DataFrame, as_of: dt.date, calibration: str = ""
) -> dict[str, Any]:
    """The body that asks the served ``forecaster`` for its forecast at ``as_of`` from ``frame`` (a
    :func:`~stockml.serving.prediction.prediction_frame`), ``calibration`` being the pyfunc's param.

    Only what that forecast reads travels: the keys, the bundle's features and ``close``, each symbol's
    last ``lookback`` rows up to ``as_of``. Strict JSON: NaN -> null, dates as ``YYYY-MM-DD``, floats
    written exactly (Python's shortest round-trip repr).
    """
    keep = [TS_CODE, TRADE_DATE, SECTOR_ID, *forecaster.feature_columns]
    if CLOSE in frame.columns and CLOSE not in keep:
        keep.append(CLOSE)
    known = sort_long(frame.loc[frame[TRADE_DATE] <= pd.Timestamp(as_of), keep])
    rows = known.groupby(TS_CODE, sort=False).tail(forecaster.lookback)
    text = rows.assign(**{TRADE_DATE: rows[TRADE_DATE].dt.strftime("%Y-%m-%d")}).astype(object)
    cells = text.where(text.notna(), None)
    return {
        "dataframe_split": {"columns": list(cells.columns), "data": cells.to_numpy().tolist()},
        "params": {"as_of": as_of.isoformat(), "calibration": calibration},
    }
