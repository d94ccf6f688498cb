"""Macro modes on a hand-built table: standardised changes from past releases only, levels, none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from feature_helpers import synthetic_market
from pydantic import ValidationError

from stockml.features import FeatureConfig, build_feature_frame
from stockml.features.macro import macro_features, macro_summary

MONTHS = pd.date_range("2021-01-31", periods=7, freq="ME")
X = [1.0, 2.0, 4.0, 3.0, 7.0, 6.0, 6.0]  # changes: -, 1, 2, -1, 4, -1, 0
FLAT = [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]  # changes: -, 0, 0, 0, 0, 1, 0
DATES = pd.bdate_range("2021-01-04", "2021-12-31")
COL = "macro__t_m__x"
FLAG = "macro__t_m__stale_flag"


def _macro(x: list[float] = X) -> pd.DataFrame:
    rows = [("x", x), ("flat", FLAT)]
    return pd.concat(
        [
            pd.DataFrame({"table": "t_m", "series": s, "freq": "M", "period_end": MONTHS, "value": v})
            for s, v in rows
        ],
        ignore_index=True,
    )


def _config(**kw: object) -> FeatureConfig:
    base = {"macro_series": ("t_m/x", "t_m/flat"), "macro_lag_days": {"t_m": 10}, "macro_z_window": 3}
    return FeatureConfig(**{**base, **kw})


def _on(frame: pd.DataFrame, day: str) -> pd.Series:
    return frame.loc[pd.Timestamp(day)]


def test_change_z_uses_the_previous_releases_only() -> None:
    frame, selected = macro_features(_macro(), DATES, _config())
    assert [s.column for s in selected] == ["macro__t_m__flat", COL]
    assert list(frame.columns) == ["macro__t_m__flat__chg_z", f"{COL}__chg_z", FLAG]
    z = frame[f"{COL}__chg_z"]
    # Release k of month-end m is public on m + 10 days. With a window of 3 the z of a change needs
    # three earlier changes: May's (change 4) is scaled by Feb-Apr's (1, 2, -1), June's (-1) by
    # Mar-May's (2, -1, 4), July's (0) by Apr-Jun's (-1, 4, -1); sd with ddof 1.
    assert _on(frame, "2021-06-10")[f"{COL}__chg_z"] == pytest.approx((4 - 2 / 3) / np.sqrt(7 / 3), rel=1e-12)
    assert _on(frame, "2021-07-12")[f"{COL}__chg_z"] == pytest.approx(
        (-1 - 5 / 3) / np.sqrt(19 / 3), rel=1e-12
    )
    assert _on(frame, "2021-08-10")[f"{COL}__chg_z"] == pytest.approx(
        (0 - 2 / 3) / np.sqrt(25 / 3), rel=1e-12
    )
    # The day before a release still shows the previous one; before three past changes exist, 0.
    assert _on(frame, "2021-06-09")[f"{COL}__chg_z"] == 0.0
    assert _on(frame, "2021-07-09")[f"{COL}__chg_z"] == _on(frame, "2021-06-10")[f"{COL}__chg_z"]
    assert (z[z.index < pd.Timestamp("2021-06-10")] == 0.0).all()
    # Flat past changes (June's 1 after 0, 0, 0): no scale to divide by, so 0, never infinite; July's 0
    # is then scaled by (0, 0, 1).
    flat = frame["macro__t_m__flat__chg_z"]
    assert (flat[flat.index < pd.Timestamp("2021-08-10")] == 0.0).all()
    assert _on(frame, "2021-08-10")["macro__t_m__flat__chg_z"] == pytest.approx(
        (0 - 1 / 3) / np.sqrt(1 / 3), rel=1e-12
    )


def test_a_later_release_never_changes_an_earlier_z() -> None:
    base, _ = macro_features(_macro(), DATES, _config())
    changed, _ = macro_features(_macro(X[:-1] + [50.0]), DATES, _config())  # July's value, public 10 Aug
    before = base.index < pd.Timestamp("2021-08-10")
    pd.testing.assert_frame_equal(base.loc[before], changed.loc[before], check_exact=True)
    assert _on(changed, "2021-08-10")[f"{COL}__chg_z"] != _on(base, "2021-08-10")[f"{COL}__chg_z"]


def test_stale_flag_before_the_first_release_and_after_the_last() -> None:
    frame, _ = macro_features(_macro(), DATES, _config())
    first, last = pd.Timestamp("2021-02-10"), MONTHS[-1] + pd.Timedelta(days=10)
    assert (frame.loc[frame.index < first, FLAG] == 1).all()
    assert (frame.loc[(frame.index >= first) & (frame.index <= last), FLAG] == 0).all()
    assert (frame.loc[frame.index > last + pd.Timedelta(days=62), FLAG] == 1).all()


def test_levels_mode_keeps_values_changes_and_staleness() -> None:
    frame, _ = macro_features(_macro(), DATES, _config(macro_mode="levels"))
    assert set(frame.columns) == {
        COL,
        f"{COL}__chg",
        "macro__t_m__flat",
        "macro__t_m__flat__chg",
        "macro__t_m__staleness_days",
        FLAG,
    }
    day = _on(frame, "2021-06-10")  # May's value (7, change 4) released today
    assert (day[COL], day[f"{COL}__chg"], day["macro__t_m__staleness_days"]) == (7.0, 4.0, 0.0)
    assert (
        _on(frame, "2021-06-09")[COL] == 3.0 and _on(frame, "2021-06-09")["macro__t_m__staleness_days"] == 30
    )
    no_chg, _ = macro_features(_macro(), DATES, _config(macro_mode="levels", macro_changes=False))
    assert not any(c.endswith("__chg") for c in no_chg.columns) and COL in no_chg.columns


def test_none_mode_and_the_summary_guard() -> None:
    empty, selected = macro_features(_macro(), DATES, _config(macro_mode="none"))
    assert empty.shape == (len(DATES), 0) and selected == []
    frame, selected = macro_features(_macro(), DATES, _config())
    summary = macro_summary(frame, _macro(), selected)
    assert [s["feature_columns"] for s in summary] == [["macro__t_m__flat__chg_z"], [f"{COL}__chg_z"]]
    assert summary[1]["table_stale_days_fraction"] == round(float(frame[FLAG].mean()), 4) > 0
    no_flag = macro_summary(frame.drop(columns=[FLAG]), _macro(), selected)
    assert no_flag[0]["table_stale_days_fraction"] is None


def test_pipeline_modes_on_a_synthetic_market() -> None:
    data = synthetic_market(n_symbols=2, n_days=100, seed=4, sentiment=False)
    default = build_feature_frame(data, FeatureConfig(horizon=3))
    macro_cols = [c for c in default.feature_columns if c.startswith("macro__")]
    assert macro_cols and all(c.endswith(("__chg_z", "__stale_flag")) for c in macro_cols)
    n_series = len(default.summary["macro_series"])
    assert sum(c.endswith("__chg_z") for c in macro_cols) == n_series
    levels = build_feature_frame(data, FeatureConfig(horizon=3, macro_mode="levels"))
    level_cols = [c for c in levels.feature_columns if c.startswith("macro__")]
    assert len(level_cols) == 2 * n_series + 2 * sum(c.endswith("__stale_flag") for c in macro_cols)
    none = build_feature_frame(data, FeatureConfig(horizon=3, macro_mode="none"))
    assert not any(c.startswith("macro__") for c in none.feature_columns)
    assert none.summary["macro_series"] == [] and "macro" not in none.summary["tables_used"]
    others = [c for c in default.feature_columns if not c.startswith("macro__")]
    assert others == none.feature_columns == [c for c in levels.feature_columns if c in others]


def test_macro_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        FeatureConfig(macro_mode="raw")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        FeatureConfig(macro_z_window=1)
