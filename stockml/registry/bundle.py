"""A model bundle: one folder with everything needed to forecast with a trained model.

Layout::

    bundle.json          what the model is: name, config, sizes, feature config and columns, quantiles,
                         lookback, training window, creation time, stockml version
    state_dict.pt        CPU weights (``torch.save`` of the state_dict; loaded with ``weights_only``)
    norm_params.json     the fitted normaliser        } the :class:`FeatureArtifacts` files
    symbol_vocab.json    symbol -> embedding index    }
    sector_vocab.json    sector -> embedding index    }
    calibration.json     optional: the online interval calibration the forecasts wear (:class:`AciState`)

:func:`load_bundle` gives a :class:`Forecaster`: point-in-time feature frame in, quantiles of the
cumulative log return ``log(P[t+h] / P[t])`` (h = 1..H, see :mod:`stockml.features.labels`) out.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from stockml.columns import TRADE_DATE, TS_CODE, quantile_column
from stockml.evaluation.calibration import AciState
from stockml.evaluation.metrics import prob_up
from stockml.features import (
    FeatureArtifacts,
    FeatureConfig,
    FeatureMismatchError,
    prices_from_log_returns,
)
from stockml.features.exogenous import SECTOR_ID
from stockml.features.frame_schema import split_columns
from stockml.features.panel import sort_long
from stockml.models import MODELS, ForecastModel, ModelConfig, ModelSizes, build_config, build_model
from stockml.models.base import cpu_state
from stockml.training.windows import WindowArrays, WindowDataset, build_window_arrays, sample_rows

BUNDLE_FILE = "bundle.json"
STATE_FILE = "state_dict.pt"
CALIBRATION_FILE = "calibration.json"
BUNDLE_VERSION = 1
CLOSE = "close"  # optional raw close in the frame: the base of the price quantiles


@dataclass(frozen=True)
class BundleMeta:
    """The contents of ``bundle.json``."""

    model_name: str
    model_config: dict[str, Any]
    sizes: dict[str, Any]
    feature_config: dict[str, Any]
    feature_columns: list[str]
    quantiles: list[float]
    horizon: int
    lookback: int
    train_start: dt.date
    train_end: dt.date
    created_at: str
    stockml_version: str
    bundle_version: int = BUNDLE_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data.update(train_start=self.train_start.isoformat(), train_end=self.train_end.isoformat())
        return json.dumps(data, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> BundleMeta:
        data = json.loads(text)
        if data.get("bundle_version") != BUNDLE_VERSION:
            raise ValueError(f"bundle version {data.get('bundle_version')}, this code reads {BUNDLE_VERSION}")
        data.update(
            train_start=dt.date.fromisoformat(data["train_start"]),
            train_end=dt.date.fromisoformat(data["train_end"]),
        )
        return cls(**data)

    def model_sizes(self) -> ModelSizes:
        return ModelSizes(**{**self.sizes, "quantiles": tuple(self.sizes["quantiles"])})


def stockml_version() -> str:
    try:
        return metadata.version("stockml")
    except metadata.PackageNotFoundError:
        return "unknown"


def save_bundle(
    folder: Path,
    *,
    model: ForecastModel,
    model_name: str,
    model_config: dict[str, Any] | ModelConfig | None,
    sizes: ModelSizes,
    feature_config: FeatureConfig,
    feature_columns: list[str],
    artifacts: FeatureArtifacts,
    train_window: tuple[dt.date, dt.date],
    calibration: AciState | None = None,
) -> Path:
    """Write the bundle into ``folder`` (created if needed; files there are overwritten); returns it.
    With ``calibration``, the forecasts it serves wear that online calibration (same quantiles and horizon).

    Checks that the pieces fit together: the model class matches ``model_name`` and its config,
    ``sizes`` match the feature columns and the horizon, and the normaliser was fitted on exactly
    ``feature_columns``.
    """
    config = build_config(model_name, model_config).model_dump(mode="json")  # unknown name: KeyError
    if not isinstance(model, MODELS[model_name]):
        raise TypeError(f"model is a {type(model).__name__}, not the registered {model_name!r} model")
    if config != model.config.model_dump(mode="json"):
        raise ValueError("model_config differs from the config the model was built with")
    if sizes.n_features != len(feature_columns):
        raise ValueError(f"sizes.n_features={sizes.n_features} but {len(feature_columns)} feature columns")
    if sizes.horizon != feature_config.horizon:
        raise ValueError(f"sizes.horizon={sizes.horizon} but feature_config.horizon={feature_config.horizon}")
    artifacts.norm.check_features(list(feature_columns))
    if calibration is not None:
        _check_calibration(calibration, sizes.quantiles, sizes.horizon)
    meta = BundleMeta(
        model_name=model_name,
        model_config=config,
        sizes=asdict(sizes),
        feature_config=feature_config.model_dump(mode="json"),
        feature_columns=list(feature_columns),
        quantiles=list(sizes.quantiles),
        horizon=sizes.horizon,
        lookback=feature_config.lookback,
        train_start=train_window[0],
        train_end=train_window[1],
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        stockml_version=stockml_version(),
    )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(cpu_state(model), folder / STATE_FILE)
    artifacts.save(folder)
    if calibration is not None:
        (folder / CALIBRATION_FILE).write_text(calibration.to_json(), encoding="utf-8")
    (folder / BUNDLE_FILE).write_text(meta.to_json(), encoding="utf-8")
    return folder


def _check_calibration(state: AciState, quantiles: tuple[float, ...], horizon: int) -> None:
    if tuple(state.quantiles) != tuple(quantiles) or state.horizon != horizon:
        raise ValueError(
            f"calibration for quantiles {state.quantiles} and horizon {state.horizon}, "
            f"the model forecasts {tuple(quantiles)} and {horizon}"
        )


def load_bundle(folder: Path | str) -> Forecaster:
    """Rebuild the model from ``bundle.json``, load its weights on CPU, and wrap it for inference."""
    folder = Path(folder)
    meta = BundleMeta.from_json((folder / BUNDLE_FILE).read_text(encoding="utf-8"))
    model = build_model(meta.model_name, meta.model_sizes(), meta.model_config)
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    calibration = folder / CALIBRATION_FILE
    aci = AciState.from_json(calibration.read_text(encoding="utf-8")) if calibration.exists() else None
    return Forecaster(model, meta, FeatureArtifacts.load(folder), aci)


class Forecaster:
    """A trained model with its normaliser and vocabularies, ready to forecast (always in eval mode)."""

    def __init__(
        self,
        model: ForecastModel,
        meta: BundleMeta,
        artifacts: FeatureArtifacts,
        calibration: AciState | None = None,
    ):
        self.model = model.eval()
        self.meta = meta
        self.artifacts = artifacts
        self.calibration = calibration  # as bundled: the state at the end of the model's evaluation
        self.feature_config = FeatureConfig.model_validate(meta.feature_config)

    @property
    def quantiles(self) -> tuple[float, ...]:
        return tuple(self.meta.quantiles)

    @property
    def horizon(self) -> int:
        return self.meta.horizon

    @property
    def lookback(self) -> int:
        return self.meta.lookback

    @property
    def feature_columns(self) -> list[str]:
        return list(self.meta.feature_columns)

    def predict(
        self,
        frame: pd.DataFrame,
        as_of: dt.date | str | pd.Timestamp | None = None,
        last_close: pd.Series | None = None,
        calibration: AciState | None = None,
        raw: bool = False,
    ) -> pd.DataFrame:
        """Quantile forecasts, one row per (symbol, horizon).

        ``frame``: a point-in-time feature frame (``build_feature_frame(...).frame``; labels may be
        NaN or absent). For each symbol the window ends at its row dated ``as_of`` (default: its last
        row); a symbol without a full ``lookback`` window ending there is skipped.

        Returns ``ts_code``, ``as_of`` (date), ``horizon`` (1..H), ``q0.05``...: quantiles of the
        cumulative raw log return from the close at ``as_of`` to the close ``horizon`` trading days
        later, and ``p_up``: the probability that return is positive (from those quantiles). With
        ``last_close`` (raw close by ts_code) or a ``close`` column in ``frame``, also
        ``last_close`` and ``price_q0.05``... = ``last_close * exp(q)``.

        The quantiles wear ``calibration`` (a state learned since the bundle was made), else the bundle's
        own; ``raw=True``: the model's quantiles as they are.
        """
        data = sort_long(self._inputs(frame))
        if data.duplicated([TS_CODE, TRADE_DATE]).any():
            raise ValueError("frame has duplicate (ts_code, trade_date) rows")
        norm = self.artifacts.norm
        arrays = build_window_arrays(data, norm, self.artifacts.symbol_vocab, self.feature_columns)
        rows = self._select_rows(arrays, as_of)
        if len(rows) == 0:
            span = f"{data[TRADE_DATE].min()} .. {data[TRADE_DATE].max()}" if len(data) else "no rows"
            raise ValueError(
                f"no symbol has a full {self.lookback}-row window ending at as_of={as_of} (frame: {span})"
            )
        full = WindowDataset(arrays, rows, self.lookback).get_batch(np.arange(len(rows)))
        batch = {k: full[k] for k in ("x", "symbol", "sector", "date")}
        batch["symbol"] = _known_index(batch["symbol"], self.model.sizes.n_symbols)
        batch["sector"] = _known_index(batch["sector"], self.model.sizes.n_sectors)
        with torch.no_grad():
            pred = self.model(batch).detach().cpu().numpy().astype(np.float64)  # (B, H, Q)
        pred = arrays.to_raw(pred, rows)

        n, h, _ = pred.shape
        codes = arrays.ts_code[rows]
        flat = pred.reshape(n * h, -1)  # (B, H, Q) -> (B*H, Q)
        columns: dict[str, Any] = {
            TS_CODE: np.repeat(codes, h),
            "as_of": np.repeat(pd.DatetimeIndex(arrays.date[rows]).date, h),
            "horizon": np.tile(np.arange(1, h + 1, dtype=np.int64), n),
        }
        columns.update({quantile_column(x): flat[:, i] for i, x in enumerate(self.quantiles)})
        out = pd.DataFrame(columns)
        state = None if raw else (calibration or self.calibration)
        if state is not None:
            _check_calibration(state, self.quantiles, self.horizon)
            out = state.apply(out)
        qcols = [quantile_column(x) for x in self.quantiles]
        out["p_up"] = prob_up(out[qcols].to_numpy(np.float64), self.quantiles)  # P(return > 0)
        base = self._last_close(data, rows, codes, last_close)
        if base is not None:
            close = np.repeat(base, h)
            out["last_close"] = close
            quantiles = out[[quantile_column(x) for x in self.quantiles]].to_numpy(np.float64)
            prices = prices_from_log_returns(close, quantiles)  # close * exp(q), day t's share terms
            for i, x in enumerate(self.quantiles):
                out[quantile_column(x, "price_q")] = prices[:, i]
        return out

    def _inputs(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Keys, the bundle's features and the normaliser's labels (NaN where absent), or a clear error."""
        lacking = [c for c in (TS_CODE, TRADE_DATE, SECTOR_ID) if c not in frame.columns]
        if lacking:
            raise ValueError(f"frame lacks key columns {lacking}")
        if frame[TRADE_DATE].dtype.kind != "M":  # text, e.g. from a JSON request (mlflow models serve)
            frame = frame.assign(**{TRADE_DATE: _parse_dates(frame[TRADE_DATE])})
        wanted = self.feature_columns
        found, _ = split_columns(frame)
        found = [c for c in found if c != CLOSE or CLOSE in wanted]
        missing = [c for c in wanted if c not in found]
        extra = [c for c in found if c not in wanted]
        if missing or extra:
            raise FeatureMismatchError(
                f"frame features differ from the bundle's ({self.meta.model_name}, trained "
                f"{self.meta.train_start}..{self.meta.train_end}): missing {missing}, unexpected {extra}"
            )
        keep = [TS_CODE, TRADE_DATE, SECTOR_ID, *wanted]
        if CLOSE in frame.columns and CLOSE not in keep:
            keep.append(CLOSE)
        labels = self.artifacts.norm.label_columns
        data = frame[keep + [c for c in labels if c in frame.columns]]
        return data.assign(**{c: np.nan for c in labels if c not in frame.columns})

    def _select_rows(self, arrays: WindowArrays, as_of: dt.date | str | pd.Timestamp | None) -> np.ndarray:
        """Per symbol, the row whose full window ends at ``as_of`` (default: the symbol's last row)."""
        rows = sample_rows(arrays, self.lookback, segment=None, require_target=False)
        if as_of is None:
            codes = arrays.ts_code
            last = np.r_[codes[1:] != codes[:-1], True]  # rows are sorted by (ts_code, trade_date)
            return rows[last[rows]]
        day = pd.Timestamp(as_of).normalize().to_datetime64()
        return rows[arrays.date[rows] == day]

    @staticmethod
    def _last_close(
        data: pd.DataFrame, rows: np.ndarray, codes: np.ndarray, last_close: pd.Series | None
    ) -> np.ndarray | None:
        if last_close is not None:
            return last_close.reindex(pd.Index(codes)).to_numpy(np.float64)
        if CLOSE in data.columns:
            return data[CLOSE].to_numpy(np.float64)[rows]
        return None


def _parse_dates(dates: pd.Series) -> pd.Series:
    """Trading days as ISO 8601 text (``2024-12-31``, ``20241231``, ``2024-12-31T00:00:00Z``) -> naive
    datetimes of the day as written."""
    parsed = pd.to_datetime(dates, format="ISO8601")
    return parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed


def _known_index(index: torch.Tensor, size: int) -> torch.Tensor:
    """Vocabulary indices outside the model's table -> 0 (unknown)."""
    return index.masked_fill((index < 0) | (index >= size), 0) if size else index
