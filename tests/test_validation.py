"""The validation gate: every bad-input case is reported with file, row, column and check,
and nothing of a failing batch reaches the lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from stockml.sources.local import LocalSource
from stockml.store.ingest import validate_batch, write_batch
from stockml.store.lake import Lake
from stockml.store.validation import DataValidationError

TODAY = dt.date(2026, 11, 27)
GOOD = (
    "ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount\n"
    "000001.SZ,20240103,10.0,10.5,9.8,10.2,10.0,0.2,2.0,1000.0,1020.0\n"
    "000001.SZ,20240102,9.9,10.1,9.7,10.0,9.9,0.1,1.0101,900.0,890.0\n"
    "000001.SZ,20240104,10.2,10.4,10.1,10.3,10.2,0.1,0.98,800.0,820.0\n"
)


def _folder(tmp_path: Path, text: str, name: str = "000001.SZ.csv") -> Path:
    root = tmp_path / "src"
    (root / "daily").mkdir(parents=True)
    (root / "daily" / name).write_text(text)
    (root / "daily" / "600000.SH.csv").write_text(GOOD.replace("000001.SZ", "600000.SH"))
    return root


def _failures(root: Path, tmp_path: Path) -> pd.DataFrame:
    data = LocalSource(root).fetch(dt.date(2020, 1, 1), dt.date(2100, 1, 1))
    with pytest.raises(DataValidationError) as info:
        validate_batch(data, TODAY, tmp_path / "reports", "test")
    report_path = info.value.report_path
    assert report_path is not None and report_path.is_file()
    written = pd.read_csv(report_path)
    assert len(written) == len(info.value.report.failures)
    return info.value.report.failures


def _bad_line(line_no: int, old: str, new: str) -> str:
    lines = GOOD.splitlines()
    lines[line_no] = lines[line_no].replace(old, new, 1)
    return "\n".join(lines) + "\n"


CASES = [
    # (name, file text, row, column, check substring)
    ("zero price", _bad_line(1, ",10.0,10.5,9.8,", ",0.0,10.5,9.8,"), 1, "open", "greater_than"),
    ("negative price", _bad_line(2, ",9.7,10.0,", ",9.7,-10.0,"), 2, "close", "greater_than"),
    ("high below low", _bad_line(3, ",10.4,10.1,", ",10.0,10.1,"), 3, "low,high", "low <= high"),
    ("nan close", _bad_line(1, ",9.8,10.2,", ",9.8,,"), 1, "close", "not_nullable"),
    ("duplicate key", _bad_line(3, "20240104", "20240102"), 2, "trade_date", "uniqueness"),
    ("unparseable date", _bad_line(2, "20240102", "2024-13-45"), 2, "trade_date", "parse date"),
    ("future date", _bad_line(3, "20240104", "20991231"), 3, "trade_date", "future"),
    ("bad ts_code", _bad_line(1, "000001.SZ", "00001.SZ"), 1, "ts_code", "str_matches"),
    ("non-numeric price", _bad_line(2, ",9.9,", ",abc,"), 2, "open", "parse numeric"),
]


@pytest.mark.parametrize(("name", "text", "row", "column", "check"), CASES, ids=[c[0] for c in CASES])
def test_each_bad_cell_is_named(
    tmp_path: Path, name: str, text: str, row: int, column: str, check: str
) -> None:
    failures = _failures(_folder(tmp_path, text), tmp_path)
    hit = failures[(failures["column"] == column) & (failures["row"] == row)]
    assert not hit.empty, failures.to_string()
    assert hit["check"].str.contains(check).any(), hit.to_string()
    assert hit["source_file"].str.endswith("000001.SZ.csv").all()
    # the good file is never blamed
    assert not failures["source_file"].str.endswith("600000.SH.csv").any()


def test_high_below_low_names_the_ohlc_check(tmp_path: Path) -> None:
    failures = _failures(_folder(tmp_path, _bad_line(3, ",10.4,10.1,", ",10.0,10.1,")), tmp_path)
    checks = set(failures.loc[failures["row"] == 3, "check"])
    assert {"low <= high", "close <= high", "open <= high"} <= checks


def test_missing_required_column(tmp_path: Path) -> None:
    frame = pd.read_csv(pd.io.common.StringIO(GOOD), dtype=str).drop(columns=["close"])
    failures = _failures(_folder(tmp_path, frame.to_csv(index=False)), tmp_path)
    hit = failures[failures["column"] == "close"]
    assert list(hit["check"]) == ["column_in_dataframe"]
    assert hit["source_file"].iloc[0].endswith("000001.SZ.csv")


@pytest.mark.parametrize(
    "text", ["", "ts_code,trade_date,open,high,low,close,vol,amount\n"], ids=["0 bytes", "header"]
)
def test_empty_file(tmp_path: Path, text: str) -> None:
    failures = _failures(_folder(tmp_path, text), tmp_path)
    assert list(failures["check"]) == ["empty file"]
    assert failures["source_file"].iloc[0].endswith("000001.SZ.csv")


def test_one_report_lists_every_failure(tmp_path: Path) -> None:
    text = _bad_line(1, "000001.SZ", "bad")
    text = "\n".join(
        [text.splitlines()[0], text.splitlines()[1], _bad_line(2, ",9.9,", ",abc,").splitlines()[2]]
    )
    failures = _failures(_folder(tmp_path, text + "\n"), tmp_path)
    assert {(1, "ts_code"), (2, "open")} <= set(zip(failures["row"], failures["column"], strict=True))


def test_nothing_of_a_failing_batch_reaches_the_lake(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    good = LocalSource(_folder(tmp_path / "a", GOOD)).fetch(dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    write_batch(lake, validate_batch(good, TODAY, tmp_path, "good"))
    before = {p: p.read_bytes() for p in lake.files("bars")}
    corrected = _bad_line(1, ",10.2,10.0,0.2", ",10.3,10.0,0.3")  # a valid correction ...
    bad = corrected + "600000.SH,20240105,1,1,1,-1,1,0,0,1,1\n"  # ... next to a bad row
    data = LocalSource(_folder(tmp_path / "b", bad)).fetch(dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    with pytest.raises(DataValidationError):
        write_batch(lake, validate_batch(data, TODAY, tmp_path, "bad"))
    assert {p: p.read_bytes() for p in lake.files("bars")} == before
    assert lake.read("bars")["close"].tolist() == [10.0, 10.2, 10.3, 10.0, 10.2, 10.3]


def test_error_message_summarises(tmp_path: Path) -> None:
    data = LocalSource(_folder(tmp_path, _bad_line(2, ",9.9,", ",abc,"))).fetch(
        dt.date(2020, 1, 1), dt.date(2026, 1, 1)
    )
    with pytest.raises(DataValidationError, match=r"000001\.SZ\.csv row 2 column open: parse numeric"):
        validate_batch(data, TODAY, tmp_path, "msg")
