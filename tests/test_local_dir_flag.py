"""One meaning per flag: ``--local-dir`` is the folder of tushare files, ``--data-dir`` the lake.

``--source local`` without a local folder fails in every command with one message that names the
real flag and env var, and nothing is read or written.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from stockml.config import Settings, SettingsError
from stockml.sources.factory import make_source
from stockml.sources.local import LocalSource

NAMES_THE_FLAG = (
    r"--local-dir PATH \(or STOCKML_LOCAL_DIR.*python -m flows\.backfill --source local --local-dir "
)


@pytest.fixture(autouse=True)
def _no_local_dir_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STOCKML_LOCAL_DIR", raising=False)
    monkeypatch.delenv("STOCKML_SOURCE", raising=False)


def test_make_source_names_local_dir_and_its_env_var() -> None:
    with pytest.raises(SettingsError, match=NAMES_THE_FLAG) as info:
        make_source(Settings(source="local"))
    assert "data-source-dir" not in str(info.value)


def test_env_var_is_enough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKML_LOCAL_DIR", str(tmp_path / "tushare"))
    source = make_source(Settings(source="local"))
    assert isinstance(source, LocalSource) and source.root == tmp_path / "tushare"


def test_cli_data_dir_is_the_lake_not_the_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stockml.cli import main

    lake = tmp_path / "lake"
    argv = ["features", "--source", "local", "--data-dir", str(lake), "--end", "2024-12-31"]
    assert main([*argv, "--out", str(tmp_path / "f.parquet")]) == 2
    assert re.search(NAMES_THE_FLAG, capsys.readouterr().err)  # one line, not a traceback
    assert not lake.exists()


def test_backfill_keeps_data_dir_as_the_lake(tmp_path: Path) -> None:
    from flows.backfill import _parse_args, backfill

    argv = [
        "--source",
        "local",
        "--data-dir",
        str(tmp_path / "tushare"),
        "--start",
        "2024-01-02",
        "--end",
        "2024-01-31",
    ]
    args = _parse_args(argv)
    assert (args.local_dir, args.data_dir) == (None, tmp_path / "tushare")
    with pytest.raises(SettingsError, match=NAMES_THE_FLAG):  # what main() runs, without a server
        backfill.fn(args.start, args.end, args.source, data_dir=args.data_dir, local_dir=args.local_dir)
    assert not (tmp_path / "tushare").exists()


def test_daily_flow_gives_the_same_message(tmp_path: Path) -> None:
    from flows.daily import daily_retrain

    with pytest.raises(SettingsError, match=NAMES_THE_FLAG):
        daily_retrain.fn(as_of=dt.date(2024, 12, 31), source="local", data_dir=tmp_path / "lake")
    assert not (tmp_path / "lake").exists()
