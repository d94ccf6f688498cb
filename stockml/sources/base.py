"""One interface for every data source, and the container of the tables it returns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, Protocol

import pandas as pd

# Optional tables, in the order runs report them.
OPTIONAL_TABLES = ("adj_factor", "index_daily", "stock_basic", "macro", "sentiment", "trade_cal")
# Tables not dated by trade_date (a snapshot, or periods of their own with a lookback): a backfill in
# chunks fetches them once per job, over the job's whole range, not again with every chunk.
REFERENCE_TABLES = ("stock_basic", "macro")
# The rest: one day's rows never change with the range asked, so chunks of a range add up to the range.
DATED_TABLES = tuple(t for t in ("bars", *OPTIONAL_TABLES) if t not in REFERENCE_TABLES)


def wanted_tables(tables: Collection[str] | None) -> set[str]:
    """The tables a ``fetch(..., tables=...)`` asks for: ``None`` means every table."""
    return set((*DATED_TABLES, *REFERENCE_TABLES) if tables is None else tables)


@dataclass(frozen=True)
class MarketData:
    """The tables one fetch returns, in canonical column names (see :mod:`stockml.columns`).

    Frames straight from a source still carry the provenance columns ``source_file`` and
    ``source_row`` and may hold unparsed strings; :func:`stockml.store.validation.validate_market_data`
    parses and checks them and drops provenance. ``None`` means the source has no such table.
    """

    bars: pd.DataFrame
    adj_factor: pd.DataFrame | None = None
    index_daily: pd.DataFrame | None = None
    stock_basic: pd.DataFrame | None = None
    macro: pd.DataFrame | None = None
    sentiment: pd.DataFrame | None = None
    trade_cal: pd.DataFrame | None = None
    # Problems found while reading (empty file, missing column), reported with validation failures.
    read_errors: tuple[ReadError, ...] = field(default=())
    # The shape of this source's ts_codes, which the validation gate checks: A-share codes
    # (``600519.SH``), or exchange tickers (``AAPL``, ``^GSPC``, ``0700.HK``) for a source beyond A-shares.
    codes: Literal["a_share", "ticker"] = "a_share"

    def tables(self) -> dict[str, pd.DataFrame]:
        """Present tables by name, bars first."""
        out = {"bars": self.bars}
        for name in OPTIONAL_TABLES:
            frame = getattr(self, name)
            if frame is not None:
                out[name] = frame
        return out

    def tables_used(self) -> list[str]:
        return list(self.tables())

    def with_tables(self, **tables: pd.DataFrame | None) -> MarketData:
        return replace(self, **tables)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ReadError:
    """A problem found before validation could run: the file, and what is wrong with it."""

    table: str
    source_file: str
    check: str
    column: str | None = None
    row: int | None = None
    value: str | None = None


class DataSource(Protocol):
    """What every source offers. Dates are inclusive; ``symbols=None`` means the whole universe.

    ``chunk_days`` is how a backfill cuts a range for this source: at most that many calendar days per
    chunk (an API that is called per trade date: a crash loses one chunk of calls, not the job), or
    ``None`` for a source that serves any range in one pass (a folder, a simulation): one chunk.
    """

    name: str
    chunk_days: ClassVar[int | None]

    def fetch(
        self,
        start: dt.date,
        end: dt.date,
        symbols: Sequence[str] | None = None,
        *,
        tables: Collection[str] | None = None,
    ) -> MarketData:
        """Every table the source has for the range, as raw canonical frames with provenance.

        ``tables`` (e.g. :data:`DATED_TABLES` or :data:`REFERENCE_TABLES`) limits the fetch to those:
        the others are neither read nor called for and come back ``None`` (bars: an empty frame).
        """
        ...

    def trading_days(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Open trading days in the range, ascending."""
        ...

    def index_constituents(self, index_code: str) -> list[str]:
        """ts_codes of an index's members (empty when the source does not know the index)."""
        ...


class FatalSourceError(RuntimeError):
    """A source error that retrying cannot fix (bad credentials, exhausted quota, missing folder)."""
