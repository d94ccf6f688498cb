"""The one config of the feature pipeline: horizons, windows, volatility, macro, normalisation.

Defaults run the small case, encode how China's statistics are released (a macro value is used only
from the day it was public) and keep inputs stationary: volatility features on by default, macro
series as standardised changes (``macro_mode="changes"``) rather than raw levels.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Days after ``period_end`` on which a table's value is public at the close. Monthly ``period_end`` is
# the month end, so ``10`` means "the 10th of the next month".
DEFAULT_MACRO_LAG_DAYS: dict[str, int] = {
    # NBS publishes CPI/PPI about the 10th of the following month, in practice between the 8th and
    # the 13th (e.g. 12 Jan 2024, 13 Oct 2024): the 15th keeps every release in the past.
    "cn_cpi_ppi_mom_monthly": 15,
    # NBS publishes the official PMI at 09:30 on the last day of the month it describes.
    "cn_pmi_monthly": 0,
    # PBoC money and credit figures come out mid-month, on no fixed day and up to about the 17th
    # (later around the Spring Festival): the 20th.
    "cn_money_credit_monthly": 20,
    # ChinaBond publishes the day's curve after the equity close: usable the next trading day.
    "cgb_yield_curve": 1,
    # SHIBOR is fixed and published at 11:00, before the close of the same day.
    "shibor": 0,
}


# Window of the realised vol whose log ``vol_of_vol_<n>`` takes the sd of.
VOL_OF_VOL_BASE_DAYS = 5


class FeatureConfig(BaseModel):
    """Everything the feature pipeline, the windows and the normaliser need. Frozen."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    horizon: int = Field(default=5, ge=1, le=60)
    lookback: int = Field(default=60, ge=1, le=1000)

    return_lags: tuple[int, ...] = (1, 5, 10, 20)
    vol_windows: tuple[int, ...] = (5, 20, 60)
    zscore_window: int = Field(default=20, ge=2)
    # Causal RiskMetrics EWMA sd of daily log returns (``vol_ewma``; also the trainer's target scale).
    ewma_lambda: float = Field(default=0.94, gt=0.0, lt=1.0)
    ewma_seed_days: int = Field(default=20, ge=1)
    downside_window: int = Field(default=20, ge=2)  # -> downside_vol_<n>
    vol_of_vol_window: int = Field(default=60, ge=2)  # -> vol_of_vol_<n>, sd of log rv over <n> days

    # Technical indicators, Tongdaxin/MyTT conventions (what Chinese research code uses).
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    kdj_n: int = 9
    kdj_m1: int = 3
    kdj_m2: int = 3
    boll_n: int = 20
    boll_k: float = 2.0
    cci_n: int = 14
    dmi_n: int = 14
    dmi_m: int = 6
    donchian_n: int = 20
    trix_n: int = 12
    trix_m: int = 20
    atr_n: int = 14
    rsi_n: int = 14
    # Rows dropped at the start of every symbol; None: derived from the windows (see ``warmup``).
    warmup_rows: int | None = Field(default=None, ge=0)

    # Macro: publication lag in calendar days after period_end, per table, and for unknown tables.
    macro_lag_days: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MACRO_LAG_DAYS))
    default_monthly_lag_days: int = Field(default=15, ge=0)
    default_daily_lag_days: int = Field(default=1, ge=0)
    # Days since the last release after which a series is flagged stale, per frequency.
    max_staleness_days: dict[str, int] = Field(default_factory=lambda: {"M": 62, "D": 14})
    # Explicit "table/series" names to use; None picks automatically (see stockml.features.macro).
    macro_series: tuple[str, ...] | None = None
    max_macro_series: int = Field(default=24, ge=0)
    max_macro_series_per_table: int = Field(default=6, ge=1)
    # Releases a series needs by the first output date to be picked automatically.
    macro_min_history: int = Field(default=2, ge=1)
    # "changes": per series its change since the previous release, z-scored on the previous
    # ``macro_z_window`` changes, plus each table's stale flag (stationary; the default).
    # "levels": raw values, ``__chg`` when ``macro_changes``, staleness days and flag. "none": no macro.
    macro_mode: Literal["changes", "levels", "none"] = "changes"
    macro_z_window: int = Field(default=24, ge=2)
    macro_changes: bool = True  # levels mode only

    market_index: str | None = "000300.SH"
    # Trading days between a sentiment row's trade_date and its use. The lake's convention is that a
    # score dated t is public by the close of t (the demo source publishes it then), so 0 is point-in-
    # time; raise it for a source that dates scores by news time rather than publication.
    sentiment_lag: int = Field(default=0, ge=0)
    sentiment_neutral: float = 0.0

    norm_method: Literal["zscore", "robust"] = "zscore"
    norm_min_rows: int = Field(default=60, ge=2)
    norm_clip: float = Field(default=10.0, gt=0)
    normalize_target: bool = False

    @model_validator(mode="after")
    def _check(self) -> FeatureConfig:
        if not self.return_lags or min(self.return_lags) < 1:
            raise ValueError(f"return_lags must be positive, got {self.return_lags}")
        if not self.vol_windows or min(self.vol_windows) < 2:
            raise ValueError(f"vol_windows must be >= 2, got {self.vol_windows}")
        if self.macd_fast >= self.macd_slow:
            raise ValueError(f"macd_fast ({self.macd_fast}) must be < macd_slow ({self.macd_slow})")
        if set(self.max_staleness_days) != {"M", "D"}:
            raise ValueError(
                f"max_staleness_days needs keys 'M' and 'D', got {sorted(self.max_staleness_days)}"
            )
        return self

    @property
    def warmup(self) -> int:
        """Rows per symbol before every feature is defined and the EMAs have forgotten their seed.

        Rolling windows of returns need their length plus the first row (whose return may be missing);
        the vol of vol needs a 5-day rv before its own window; ``ret_1_std`` the EWMA sigma of the day
        before; ADXR needs n + 2m; TRIX three EMAs and an MA; EMAs need about two slow spans to settle
        (weight of the seed below 2 %).
        """
        if self.warmup_rows is not None:
            return self.warmup_rows
        needs = [
            max(self.return_lags),
            max(self.vol_windows) + 1,
            self.ewma_seed_days + 1,  # ret_1_std divides by sigma of the day before
            self.downside_window + 1,
            VOL_OF_VOL_BASE_DAYS + self.vol_of_vol_window,  # an sd over log rv_5 values
            self.zscore_window,
            self.boll_n,
            self.cci_n,
            self.donchian_n,
            self.atr_n + 1,
            self.dmi_n + 2 * self.dmi_m,
            self.kdj_n + 2 * (self.kdj_m1 + self.kdj_m2),
            2 * self.macd_slow + self.macd_signal,
            3 * self.trix_n + self.trix_m,
            3 * self.rsi_n,
        ]
        return max(needs)

    def macro_lag(self, table: str, freq: str) -> int:
        """Publication lag (calendar days after period_end) of ``table``."""
        if table in self.macro_lag_days:
            return self.macro_lag_days[table]
        return self.default_monthly_lag_days if freq == "M" else self.default_daily_lag_days
