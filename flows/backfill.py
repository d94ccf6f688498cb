"""Backfill a date range in chunks, resumably: ``python -m flows.backfill --source demo --start D --end D``.

Chunks are cut as the source needs: a local folder or the demo market in one chunk, tushare by 92
calendar days of trade dates (``ingest.chunk_days``; ``--chunk-days`` forces a size on any source).
The reference tables (stock_basic, macro) are fetched once per job, with the first chunk still to do.
A rerun of the same request after a crash skips the chunks already written (the manifest records
them) and finishes the job; upserts make any repeated chunk harmless.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from prefect import flow

from flows import quiet_offline
from flows.ingest import ingest_chunk
from stockml.config import SOURCE_NAMES, SourceName, settings_for
from stockml.sources.factory import make_source
from tasks import lake as tl
from tasks.ingest import finish_job, open_job, pending_chunks
from tasks.timing import StageTimer


@flow(name="backfill", log_prints=True)
def backfill(
    start: dt.date,
    end: dt.date,
    source: SourceName | None = None,
    symbols: list[str] | None = None,
    data_dir: Path | None = None,
    local_dir: Path | None = None,
    chunk_days: int | None = None,
) -> dict:
    """Ingest [start, end] chunk by chunk; returns a summary of the job and of the lake."""
    timer = StageTimer()
    settings = settings_for(source, data_dir, local_dir)
    job = open_job(settings, make_source(settings), start, end, symbols)
    todo, skipped = pending_chunks(job, chunk_days, settings.ingest.chunk_days)
    print(f"backfill {job.source_key} {start}..{end}: {len(todo) + skipped} chunks, {skipped} already done")
    entries = [ingest_chunk(settings, job, chunk, reference=i == 0) for i, chunk in enumerate(todo)]
    finish_job(job)
    summary = {
        "job": job.id,
        "source": job.source_key,
        "chunks_run": len(todo),
        "chunks_skipped": skipped,
        "rows_inserted": sum(t["inserted"] for e in entries for t in e["tables"].values()),
        "rows_updated": sum(t["updated"] for e in entries for t in e["tables"].values()),
        "tables_used": sorted({t for e in entries for t in e["tables"]}),
        "lake": tl.summary(job.lake),
        "seconds": timer.elapsed(),
    }
    return summary


def format_summary(summary: dict) -> str:
    lake = summary["lake"]
    return "\n".join(
        [
            f"backfill done in {summary['seconds']} s: {summary['chunks_run']} chunk(s) run, "
            f"{summary['chunks_skipped']} skipped; {summary['rows_inserted']} rows inserted, "
            f"{summary['rows_updated']} updated",
            f"tables used this run: {', '.join(summary['tables_used']) or 'none'}",
            f"lake {lake['root']}: {lake['symbols']} symbols, {lake['bars']} bars, "
            f"{lake['first_date']}..{lake['last_date']}; tables {', '.join(lake['tables'])}",
        ]
    )


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m flows.backfill", description=__doc__)
    parser.add_argument("--source", choices=SOURCE_NAMES, default=None)
    parser.add_argument("--data-dir", type=Path, default=None, help="lake root (default: settings)")
    parser.add_argument("--local-dir", type=Path, default=None, help="folder of tushare files (local)")
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--symbols", nargs="*", default=None, help="ts_codes or index codes")
    parser.add_argument(
        "--chunk-days",
        type=int,
        default=None,
        help="calendar days per chunk, for any source (default: as the source needs: local and demo "
        "in one chunk, tushare ingest.chunk_days or 92)",
    )
    parser.add_argument(
        "--replay", action="store_true", help="then forecast as of every trading day (see flows.replay)"
    )
    parser.add_argument("--retrain-every", type=int, default=20, help="replay: trading days between retrains")
    parser.add_argument("--history-days", type=int, default=730, help="replay: calendar days of history")
    parser.add_argument("--models", default="lstm", help="replay: comma-separated model names")
    parser.add_argument("--max-epochs", type=int, default=3, help="replay: epochs per training")
    parser.add_argument("--registered-name", default="stockml-replay", help="replay: registry model name")
    parser.add_argument(
        "--with-challenger",
        action="store_true",
        help="replay: where no model has passed the gate yet, forecast with the day's challenger "
        "(rows say model_role=challenger)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    quiet_offline()
    args = _parse_args(argv)
    start = args.start - dt.timedelta(days=args.history_days) if args.replay else args.start
    summary = backfill(
        start=start,
        end=args.end,
        source=args.source,
        symbols=args.symbols,
        data_dir=args.data_dir,
        local_dir=args.local_dir,
        chunk_days=args.chunk_days,
    )
    print(format_summary(summary))
    if args.replay:
        from flows.replay import replay

        done = replay(
            start=args.start,
            end=args.end,
            source=args.source,
            data_dir=args.data_dir,
            local_dir=args.local_dir,
            symbols=args.symbols,
            models=[m for m in args.models.split(",") if m],
            retrain_every=args.retrain_every,
            history_days=args.history_days,
            max_epochs=args.max_epochs,
            registered_name=args.registered_name,
            with_challenger=args.with_challenger,
        )
        print(
            f"replay: {done['forecast_days_written']} forecast day(s) written, "
            f"{done['forecast_days_skipped']} already there, retrain days {done['retrain_days']}; "
            f"{done['predictions']}"
        )


if __name__ == "__main__":
    main()
