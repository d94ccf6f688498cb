"""Settings: YAML < .env < environment < keyword arguments; bad values name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockml.config import SettingsError, load_settings


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("STOCKML_DATA_DIR", "STOCKML_SOURCE", "STOCKML_INGEST__CHUNK_DAYS"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "conf.yaml").write_text("data_dir: from-yaml\nsource: local\ningest:\n  chunk_days: 10\n")
    monkeypatch.setenv("STOCKML_CONFIG", str(tmp_path / "conf.yaml"))
    return tmp_path


def test_yaml_then_dotenv_then_env(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().data_dir == Path("from-yaml")
    (in_tmp / ".env").write_text("STOCKML_DATA_DIR=from-dotenv\nSTOCKML_INGEST__CHUNK_DAYS=20\n")
    settings = load_settings()
    assert (settings.data_dir, settings.ingest.chunk_days, settings.source) == (
        Path("from-dotenv"),
        20,
        "local",
    )
    monkeypatch.setenv("STOCKML_DATA_DIR", "from-env")
    assert load_settings().data_dir == Path("from-env")
    assert load_settings(data_dir=Path("from-arg")).data_dir == Path("from-arg")


def test_settings_are_frozen(in_tmp: Path) -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.source = "demo"  # type: ignore[misc]


def test_invalid_values_name_the_field(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKML_INGEST__CHUNK_DAYS", "-3")
    monkeypatch.setenv("STOCKML_SOURCE", "yahoo")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "ingest.chunk_days" in str(info.value) and "source" in str(info.value)


def test_unknown_yaml_key_is_an_error(in_tmp: Path) -> None:
    (in_tmp / "conf.yaml").write_text("data_dri: typo\n")
    with pytest.raises(SettingsError, match="data_dri"):
        load_settings()


def test_missing_config_file_is_an_error(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKML_CONFIG", str(in_tmp / "nope.yaml"))
    with pytest.raises(SettingsError, match="nope.yaml"):
        load_settings()
