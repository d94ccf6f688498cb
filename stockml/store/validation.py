"""The validation gate: parse raw canonical frames, check them lazily, report every failure.

A failure report has one row per problem: table, source_file, row (1-based data row in that file,
header excluded), column, check and the offending value. Nothing of a failing batch may reach the
lake: callers write only when :attr:`ValidationReport.ok` holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from stockml.columns import REQUIRED, SOURCE_FILE, SOURCE_ROW
from stockml.sources.base import MarketData, ReadError
from stockml.sources.tushare_format import parse_dates
from stockml.store.schemas import DATE, NUMERIC, OHLC_RULES, TABLE_TYPES, table_schema

REPORT_COLUMNS = ["table", "source_file", "row", "column", "check", "value"]


@dataclass(frozen=True)
class ValidationReport:
    """Every failure of one batch; empty when the batch is clean."""

    failures: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.failures.empty

    def summary(self, max_lines: int = 15) -> str:
        if self.ok:
            return "validation passed"
        f = self.failures
        head = f"{len(f)} validation failure(s) in {f['source_file'].nunique()} file(s):"
        lines = [
            f"  {r.source_file} row {r.row if pd.notna(r.row) else '-'} column {r.column}: "
            f"{r.check} (value {r.value!r}) [{r.table}]"
            for r in f.head(max_lines).itertuples()
        ]
        more = [f"  ... and {len(f) - max_lines} more"] if len(f) > max_lines else []
        return "\n".join([head, *lines, *more])

    def write(self, path: Path) -> Path:
        """Write the full report as CSV (aside, then rename) and return its path."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        self.failures.to_csv(tmp, index=False)
        tmp.replace(path)
        return path


class DataValidationError(ValueError):
    """A batch failed validation; nothing of it was written. Carries the full report."""

    def __init__(self, report: ValidationReport, report_path: Path | None = None) -> None:
        where = f"\nfull report: {report_path}" if report_path else ""
        super().__init__(report.summary() + where)
        self.report = report
        self.report_path = report_path


def _failure(table: str, file: object, row: object, column: object, check: str, value: object) -> dict:
    return {"table": table, "source_file": file, "row": row, "column": column, "check": check, "value": value}


def parse_table(table: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Parse each known column to its type; report cells that could not be parsed and absent columns."""
    files = frame[SOURCE_FILE] if SOURCE_FILE in frame else pd.Series("?", index=frame.index)
    rows = frame[SOURCE_ROW] + 1 if SOURCE_ROW in frame else pd.Series(np.nan, index=frame.index)
    failures: list[dict] = []
    out = {}
    for column, kind in TABLE_TYPES[table].items():
        if column not in frame:
            if column in REQUIRED[table]:
                for file in files.unique() if len(files) else ["?"]:
                    failures.append(_failure(table, file, None, column, "column_in_dataframe", None))
            out[column] = pd.Series(np.nan if kind != "text" else None, index=frame.index, dtype=object)
            continue
        raw = frame[column]
        if kind == NUMERIC:
            parsed = pd.to_numeric(raw, errors="coerce").astype(float)
        elif kind == DATE:
            parsed = parse_dates(raw)
        else:
            parsed = raw.astype("str").str.strip()  # pandas' arrow-backed strings: fast checks
        bad = raw.notna() & parsed.isna()
        for i in np.flatnonzero(bad.to_numpy()):
            failures.append(
                _failure(table, files.iat[i], rows.iat[i], column, f"parse {kind}", str(raw.iat[i]))
            )
        out[column] = parsed
    extra = [c for c in frame.columns if c not in out]
    return pd.DataFrame(out, index=frame.index).join(frame[extra]), failures


def validate_table(
    table: str, frame: pd.DataFrame, today: dt.date, codes: str = "a_share"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse and check one table (``codes``: the shape of its ts_codes, see ``MarketData.codes``).
    Returns the clean frame (no provenance) and its failures."""
    frame = frame.reset_index(drop=True)
    parsed, failures = parse_table(table, frame)
    unparsed = {(f["column"], f["row"], f["source_file"]) for f in failures}
    missing = {f["column"] for f in failures if f["check"] == "column_in_dataframe"}
    try:
        table_schema(table, today, codes).validate(parsed, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failures.extend(_schema_failures(table, parsed, exc.failure_cases, unparsed, missing))
    clean = parsed.drop(columns=[c for c in (SOURCE_FILE, SOURCE_ROW) if c in parsed])
    report = pd.DataFrame(failures, columns=REPORT_COLUMNS)
    return clean, report


def _schema_failures(
    table: str, parsed: pd.DataFrame, cases: pd.DataFrame, unparsed: set, missing: set[str]
) -> list[dict]:
    files = parsed[SOURCE_FILE] if SOURCE_FILE in parsed else pd.Series("?", index=parsed.index)
    rows = parsed[SOURCE_ROW] + 1 if SOURCE_ROW in parsed else pd.Series(np.nan, index=parsed.index)
    out: list[dict] = []
    reported_rules: set[tuple[int, str]] = set()
    for case in cases.itertuples():
        idx = case.index
        column = case.column if case.column != table else None
        check = str(case.check)
        if column in missing:
            continue
        if idx is None or pd.isna(idx):
            out.append(_failure(table, "*", None, column, check, case.failure_case))
            continue
        i = int(idx)
        if check in OHLC_RULES:  # a row rule: one failure naming both columns, not one per column
            if (i, check) in reported_rules:
                continue
            reported_rules.add((i, check))
            lo, hi = OHLC_RULES[check]
            value = f"{lo}={parsed[lo].iat[i]}, {hi}={parsed[hi].iat[i]}"
            out.append(_failure(table, files.iat[i], rows.iat[i], f"{lo},{hi}", check, value))
            continue
        if (column, rows.iat[i], files.iat[i]) in unparsed:
            continue  # already reported as unparseable
        out.append(_failure(table, files.iat[i], rows.iat[i], column, check, case.failure_case))
    return out


def _read_error_rows(errors: tuple[ReadError, ...]) -> list[dict]:
    return [_failure(e.table, e.source_file, e.row, e.column, e.check, e.value) for e in errors]


def validate_market_data(data: MarketData, today: dt.date) -> tuple[MarketData, ValidationReport]:
    """Validate every table of a fetch. The clean data is only meaningful when the report is ok."""
    clean: dict[str, pd.DataFrame] = {}
    reports = [pd.DataFrame(_read_error_rows(data.read_errors), columns=REPORT_COLUMNS)]
    for table, frame in data.tables().items():
        clean[table], report = validate_table(table, frame, today, data.codes)
        reports.append(report)
    failures = pd.concat([r for r in reports if not r.empty] or [reports[0]], ignore_index=True)
    return MarketData(**clean, codes=data.codes), ValidationReport(failures)
