"""Per-symbol normalisation fitted on the training window only, persisted as versioned JSON.

``zscore`` uses mean / std, ``robust`` median / (IQR / 1.349) (falling back to the std where the IQR is
zero, e.g. a feature that is mostly 0). Symbols with fewer than ``min_rows`` training rows, or unseen in
training, use the global statistics of the window. Columns ending in ``_flag`` pass through unchanged.
Columns ending in ``_xs`` (cross-sectionally comparable, e.g. log volatility) use the global statistics
for every symbol, so their level survives: a volatile stock keeps a higher value than a quiet one.
Labels never enter ``x``. Targets are divided by a per-row, per-horizon scale (:func:`target_scales`; no
centring, so sign and zero keep their meaning) and forecasts multiplied back by it:

* ``target_vol_column`` (the default path of the trainer): ``sigma_t * sqrt(h)``, where ``sigma_t`` is a
  causal volatility column of the frame (``vol_ewma``), so the model forecasts quantiles of
  volatility-standardised returns and the mapping back is exact at serving time;
* ``normalize_target``: the per-horizon training std of the label (one number per horizon);
* neither: raw log returns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from stockml.columns import TRADE_DATE, TS_CODE
from stockml.features.json_file import read_model_json, write_model_json

NORM_VERSION = 1
FLAG_SUFFIX = "_flag"
GLOBAL_SUFFIX = "_xs"  # normalised with the window's global statistics for every symbol
_MIN_SCALE = 1e-8
_CHUNK_ROWS = 1 << 17


class FeatureMismatchError(ValueError):
    """The feature list a normaliser was fitted on differs from the one given now."""


class Stats(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    center: list[float]
    scale: list[float]
    n_rows: int


class NormParams(BaseModel):
    """Everything needed to normalise ``x`` (and optionally the target) exactly as in training."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = NORM_VERSION
    method: Literal["zscore", "robust"]
    fit_start: dt.date
    fit_end: dt.date
    features: list[str]
    features_hash: str
    clip: float
    min_rows: int
    per_symbol: dict[str, Stats]
    global_stats: Stats
    label_columns: list[str] = []
    target_scale: list[float] | None = None
    target_vol_column: str | None = None

    def check_features(self, features: list[str]) -> None:
        """Raise :class:`FeatureMismatchError` naming the differences unless ``features`` match exactly."""
        if list(features) == self.features:
            return
        missing = [f for f in self.features if f not in features]
        extra = [f for f in features if f not in self.features]
        detail = (
            f"missing {missing}, unexpected {extra}" if missing or extra else "same names, different order"
        )
        raise FeatureMismatchError(
            f"features differ from those the normaliser was fitted on (hash {self.features_hash[:12]} vs "
            f"{features_hash(list(features))[:12]}): {detail}"
        )

    def save(self, path: Path) -> Path:
        return write_model_json(self, path)

    @classmethod
    def load(cls, path: Path) -> NormParams:
        params = read_model_json(cls, path, NORM_VERSION, "NormParams")
        if features_hash(params.features) != params.features_hash:
            raise ValueError(f"{path}: feature list does not match its hash (file edited or corrupt)")
        return params


def features_hash(features: list[str]) -> str:
    return hashlib.sha256("\n".join(features).encode("utf-8")).hexdigest()


def _in_window(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    dates = frame[TRADE_DATE]
    return frame.loc[(dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))]


def _stats(values: np.ndarray, method: str, passthrough: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(center, scale) per column of a (rows, F) block."""
    std = values.std(axis=0)
    if method == "zscore":
        center, scale = values.mean(axis=0), std
    else:
        q25, center, q75 = np.quantile(values, [0.25, 0.5, 0.75], axis=0)
        scale = (q75 - q25) / 1.349
        scale = np.where(scale > _MIN_SCALE, scale, std)
    scale = np.where(np.isfinite(scale) & (scale > _MIN_SCALE), scale, 1.0)
    center = np.where(np.isfinite(center), center, 0.0)
    return np.where(passthrough, 0.0, center), np.where(passthrough, 1.0, scale)


def fit_normalizer(
    frame: pd.DataFrame,
    features: list[str],
    start: dt.date,
    end: dt.date,
    *,
    method: Literal["zscore", "robust"] = "zscore",
    min_rows: int = 60,
    clip: float = 10.0,
    label_columns: list[str] | None = None,
    normalize_target: bool = False,
    target_vol_column: str | None = None,
) -> NormParams:
    """Fit on rows with ``start <= trade_date <= end`` only; nothing outside the window is read.

    Features must be finite there (the feature schema guarantees it). ``target_vol_column`` (a column of
    ``frame``) makes targets volatility-standardised and wins over ``normalize_target``.
    """
    train = _in_window(frame, start, end).sort_values(TS_CODE, kind="stable")
    if train.empty:
        raise ValueError(f"no rows to fit the normaliser on in {start} .. {end}")
    if target_vol_column is not None and target_vol_column not in frame.columns:
        raise ValueError(f"target_vol_column {target_vol_column!r} is not a column of the feature frame")
    passthrough = np.array([f.endswith(FLAG_SUFFIX) for f in features])
    global_only = np.array([f.endswith(GLOBAL_SUFFIX) for f in features])
    values = train[features].to_numpy(np.float64)
    g_center, g_scale = _stats(values, method, passthrough)
    codes = train[TS_CODE].to_numpy()
    bounds = np.r_[0, np.flatnonzero(codes[1:] != codes[:-1]) + 1, len(codes)]
    per_symbol = {}
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi - lo >= min_rows:
            center, scale = _stats(values[lo:hi], method, passthrough)
            center, scale = np.where(global_only, g_center, center), np.where(global_only, g_scale, scale)
            per_symbol[str(codes[lo])] = Stats(
                center=center.tolist(), scale=scale.tolist(), n_rows=int(hi - lo)
            )
    target_scale = None
    if normalize_target and label_columns and target_vol_column is None:
        std = np.nanstd(train[label_columns].to_numpy(np.float64), axis=0)
        target_scale = np.where(np.isfinite(std) & (std > _MIN_SCALE), std, 1.0).tolist()
    return NormParams(
        method=method,
        fit_start=start,
        fit_end=end,
        features=list(features),
        features_hash=features_hash(list(features)),
        clip=clip,
        min_rows=min_rows,
        per_symbol=per_symbol,
        global_stats=Stats(center=g_center.tolist(), scale=g_scale.tolist(), n_rows=len(train)),
        label_columns=list(label_columns or []),
        target_scale=target_scale,
        target_vol_column=target_vol_column if label_columns else None,
    )


def transform_features(
    frame: pd.DataFrame, params: NormParams, features: list[str] | None = None
) -> np.ndarray:
    """(n, F) float32 matrix of normalised, clipped features in ``params.features`` order.

    ``features``: the caller's current feature list, checked against the fitted one (default: the
    frame's columns must simply contain the fitted features).
    """
    if features is not None:
        params.check_features(features)
    missing = [f for f in params.features if f not in frame.columns]
    if missing:
        raise FeatureMismatchError(f"frame lacks features the normaliser was fitted on: {missing}")
    codes = sorted(params.per_symbol)
    centers = np.array([params.per_symbol[c].center for c in codes] + [params.global_stats.center])
    scales = np.array([params.per_symbol[c].scale for c in codes] + [params.global_stats.scale])
    row = pd.Index(codes).get_indexer(frame[TS_CODE])
    row[row < 0] = len(codes)  # unseen in training -> global
    out = np.empty((len(frame), len(params.features)), dtype=np.float32)
    values = frame[params.features]
    for lo in range(0, len(frame), _CHUNK_ROWS):
        hi = min(lo + _CHUNK_ROWS, len(frame))
        block = (values.iloc[lo:hi].to_numpy(np.float64) - centers[row[lo:hi]]) / scales[row[lo:hi]]
        out[lo:hi] = np.clip(block, -params.clip, params.clip)
    return out


def target_scales(frame: pd.DataFrame, params: NormParams) -> np.ndarray:
    """(n, H) divisors of the labels of ``frame``'s rows (model scale = raw / divisor).

    ``sigma_t * sqrt(h)`` with a volatility column (NaN where sigma is missing or not positive, so such
    rows are never trained on or forecast), the per-horizon training std, or ones.
    """
    n, h = len(frame), len(params.label_columns)
    if params.target_vol_column is not None:
        sigma = frame[params.target_vol_column].to_numpy(np.float64)
        sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, np.nan)
        return sigma[:, None] * np.sqrt(np.arange(1, h + 1, dtype=np.float64))[None, :]  # (n,) -> (n, H)
    if params.target_scale is not None:
        return np.broadcast_to(np.asarray(params.target_scale, np.float64), (n, h)).copy()
    return np.ones((n, h))


def transform_target(y: Any, scales: np.ndarray) -> Any:
    """Raw log returns ``(n, H)`` -> model scale, with the divisors of :func:`target_scales`."""
    return y / scales


def inverse_target(y: Any, scales: np.ndarray, quantiles: bool = False) -> Any:
    """Model scale -> raw log returns: ``(n, H)``, or ``(n, H, Q)`` forecasts with ``quantiles=True``."""
    s = scales[..., None] if quantiles else scales  # (n, H) -> (n, H, 1) to broadcast over Q
    return y * (y.new_tensor(s) if hasattr(y, "new_tensor") else s)
