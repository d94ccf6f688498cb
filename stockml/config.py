"""Settings: one typed, frozen object read from YAML, ``.env`` and ``STOCKML_*`` variables.

Precedence, lowest to highest: the YAML file (``config/stockml.yaml``, or the path in
``STOCKML_CONFIG``), then ``.env``, then environment variables (``STOCKML_DATA_DIR``,
``STOCKML_DEMO__N_SYMBOLS`` for nested fields), then keyword arguments. Secrets are not settings:
``TUSHARE_TOKEN`` is read only by the tushare adapter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

DEFAULT_CONFIG_FILE = Path("config/stockml.yaml")
SourceName = Literal["demo", "local", "tushare", "akshare", "yfinance"]
SOURCE_NAMES = list(get_args(SourceName))  # the --source choices of every command


class IngestSettings(BaseModel):
    """How ingestion runs: backfill chunk size in calendar days, and fetch retries."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # Chunk size for a source that fetches by trade date (tushare; None: the source's own, 92). A source
    # read in one pass (local, demo) ignores it; ``--chunk-days`` forces a size on any source.
    chunk_days: int | None = Field(default=None, ge=1, le=3660)
    fetch_retries: int = Field(default=3, ge=0, le=20)
    fetch_retry_delay_s: float = Field(default=2.0, ge=0)


class Settings(BaseSettings):
    """Every setting a run needs. Frozen: build a new one rather than changing it."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="STOCKML_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
    )

    data_dir: Path = Path("data")
    source: SourceName = "demo"
    local_dir: Path | None = None
    universe: tuple[str, ...] = ()
    ingest: IngestSettings = IngestSettings()
    # Sub-configs owned by their adapters, validated there (kept as plain dicts here so that
    # ``stockml.config`` does not import every adapter).
    demo: dict[str, object] = Field(default_factory=dict)
    tushare: dict[str, object] = Field(default_factory=dict)
    akshare: dict[str, object] = Field(default_factory=dict)  # e.g. {adjust: hfq, requests_per_minute: 60}
    yfinance: dict[str, object] = Field(default_factory=dict)  # e.g. {requests_per_minute: 30}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = Path(os.environ.get("STOCKML_CONFIG", DEFAULT_CONFIG_FILE))
        yaml_settings = YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file)
        return (init_settings, env_settings, dotenv_settings, yaml_settings)


class SettingsError(ValueError):
    """Invalid settings, with every bad field named."""


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings; a bad value raises :class:`SettingsError` naming the field."""
    config_file = Path(os.environ.get("STOCKML_CONFIG", DEFAULT_CONFIG_FILE))
    if "STOCKML_CONFIG" in os.environ and not config_file.is_file():
        raise SettingsError(f"STOCKML_CONFIG points to {config_file}, which is not a file")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']} (got {err.get('input')!r})"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings ({config_file}, .env, STOCKML_*): {problems}") from exc


def settings_for(
    source: SourceName | None = None, data_dir: Path | None = None, local_dir: Path | None = None
) -> Settings:
    """The settings with a run's source and folders on top (the CLI's options, a flow's parameters);
    None keeps the configured value."""
    overrides = {"source": source, "data_dir": data_dir, "local_dir": local_dir}
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})
