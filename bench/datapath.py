"""The PostgreSQL data path next to its bare SQL reference, in the same run on the same database:

1. importing N contacts from a CSV file (`mailramp import contacts`' code path) against COPY of the
   same file into the two tables an import writes, with their indexes: one with the contacts table's
   five, one with the consent history's two, each COPY made before and after the import and averaged
   (COPY into a bare table printed beside it);
2. planning an N-contact wave (`plan_wave`) against one plain `INSERT ... SELECT` writing the same
   ledger rows into the same indexed table;
3. the N-row `sends.csv` export (`reports.sends_csv`, streamed) against `COPY (same query) TO STDOUT`.

    BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/datapath.py [--contacts 1000000]

Targets: import within 2x (issue 26), planning within 1.5x, export within 2x of the reference.
The export's peak memory growth is printed too (it must stay flat: streamed).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench.common import emit, scratch_app, workdir

COUNTRIES = ["United Kingdom", "France", "Germany", "Spain", "Netherlands", "EIRE", "Australia"]


def write_contacts(path: Path, n: int) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["email", "name", "country", "timezone", "consent", "plan", "age"])
        for i in range(n):
            out.writerow(
                [
                    f"Person.{i}@Example.com",
                    f"Person {i}",
                    rng.choice(COUNTRIES),
                    "Europe/London" if i % 3 else "",
                    "yes" if i % 50 else "no",
                    "pro" if i % 4 == 0 else "free",
                    str(18 + i % 60),
                ]
            )


def raw_connection(rt: Any) -> Any:
    engine = rt.session_factory.kw["bind"]
    return engine.raw_connection()


# The contacts table's own indexes on the bare table: what COPY costs once the rows must be findable
# by email and external id and filterable by country and status.
INDEXED = (
    "ALTER TABLE {table} ADD COLUMN id bigserial PRIMARY KEY, ADD COLUMN status text DEFAULT 'active', "
    "ADD COLUMN external_id text UNIQUE, ADD CONSTRAINT {table}_email UNIQUE (email)",
    "CREATE INDEX {table}_country ON {table} (country)",
    "CREATE INDEX {table}_status ON {table} (status)",
)
# The consent history's: one row per contact (each new contact's first consent step), found by
# contact and time (consent_records' primary key and its (contact_id, at) index).
CONSENT_INDEXED = (
    "ALTER TABLE {table} ADD COLUMN id bigserial PRIMARY KEY, ADD COLUMN contact_id bigserial, "
    "ADD COLUMN at timestamptz DEFAULT now()",
    "CREATE INDEX {table}_contact_at ON {table} (contact_id, at)",
)


def bare_copy(
    rt: Any, path: Path, indexes: tuple[str, ...] = (), table: str = "bench_bare_contacts"
) -> float:
    """COPY of the file into a bare table (the old reference), or into one with `indexes` (the
    contacts table's five: INDEXED; the consent history's two: CONSENT_INDEXED)."""
    conn = raw_connection(rt)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            cur.execute(
                f"CREATE TABLE {table} (email text, name text, country text, timezone text, "
                "consent text, plan text, age text)"
            )
            for statement in indexes:
                cur.execute(statement.format(table=table))
            conn.commit()
            started = time.perf_counter()
            with (
                path.open("rb") as fh,
                cur.copy(
                    f"COPY {table} (email, name, country, timezone, consent, plan, age) "
                    "FROM STDIN WITH (FORMAT csv, HEADER)"
                ) as copy,
            ):
                while block := fh.read(1 << 20):
                    copy.write(block)
            conn.commit()
            elapsed = time.perf_counter() - started
            cur.execute(f"DROP TABLE {table}")
            conn.commit()
    finally:
        conn.close()
    return elapsed


def indexed_copy(rt: Any, path: Path) -> tuple[float, float]:
    """The import's true floor: (COPY of the file into a table with the contacts table's indexes,
    COPY of it into one with the consent history's), the two tables every import writes."""
    return bare_copy(rt, path, INDEXED), bare_copy(rt, path, CONSENT_INDEXED, "bench_bare_consent")


def mailramp_import(rt: Any, path: Path) -> tuple[float, int]:
    from campaigns.imports import runs as imports
    from campaigns.imports.stream import start_run

    with rt.session() as session:
        run_id = start_run(session, "contacts", path.name, "bench", status="running").id
    started = time.perf_counter()
    run = imports.import_file(rt.session_factory, run_id, path, "contacts")
    return time.perf_counter() - started, run.rows_imported


def plan(rt: Any, batch_size: int) -> tuple[float, float, int]:
    """The planner against a plain INSERT ... SELECT of the same rows into the same table, run once
    before and once after it (each for a campaign of its own), so neither gets the warmer table."""
    from campaigns.sending.planner import plan_wave
    from tests.factories import add_campaign, add_template

    with rt.session() as session:
        template = add_template(session)
        before = add_campaign(session, template.id, name="reference before").id
        campaign_id = add_campaign(session, template.id, name="planned").id
        after = add_campaign(session, template.id, name="reference after").id
    conn = raw_connection(rt)
    try:
        with conn.cursor() as cur:
            cur.execute("ANALYZE contacts")
            conn.commit()
        bare = [_insert_select(conn, before, batch_size)]
        with rt.session() as session:
            started = time.perf_counter()
            wave, _batches = plan_wave(session, campaign_id, None, batch_size)
            session.commit()
            planned_s = time.perf_counter() - started
            planned = wave.planned
        bare.append(_insert_select(conn, after, batch_size))
    finally:
        conn.close()
    return sum(bare) / len(bare), planned_s, planned


def _insert_select(conn: Any, campaign_id: int, batch_size: int) -> float:
    with conn.cursor() as cur:
        started = time.perf_counter()
        cur.execute(
            "INSERT INTO sends (campaign_id, contact_id, batch, state, queued_at, arm, content, "
            "segments, forced, message_id, revenue, attempts, error) "
            "SELECT %s, id, (row_number() OVER (ORDER BY id) - 1) / %s, 'queued', now(), 'control', "
            "'control', '[]'::jsonb, false, '', 0, 0, '' FROM contacts WHERE status = 'active' AND consent",
            (campaign_id, batch_size),
        )
        conn.commit()
        return time.perf_counter() - started


def export(rt: Any, campaign_id: int) -> tuple[float, float, int, int]:
    from campaigns.reports.results import sends_csv

    conn = raw_connection(rt)
    try:
        with conn.cursor() as cur:
            started = time.perf_counter()
            size = 0
            with cur.copy(
                "COPY (SELECT s.id, c.email, c.name, s.arm, s.content, s.state, s.sent_at, s.opened_at, "
                "s.clicked_at, s.converted_at, s.revenue, s.unsubscribed_at, s.error FROM sends s "
                f"JOIN contacts c ON c.id = s.contact_id WHERE s.campaign_id = {int(campaign_id)} ORDER BY s.id) "
                "TO STDOUT WITH (FORMAT csv, HEADER)"
            ) as copy:
                for block in copy:
                    size += len(block)
            bare = time.perf_counter() - started
        conn.commit()
    finally:
        conn.close()
    rss_before = _rss_kib()
    peak = rss_before
    started = time.perf_counter()
    lines = 0
    for n, chunk in enumerate(sends_csv(rt.session_factory, campaign_id)):
        lines += chunk.count("\n") if isinstance(chunk, str) else chunk.count(b"\n")
        if n % 50 == 0:
            peak = max(peak, _rss_kib())
    ours = time.perf_counter() - started
    grown_kib = max(peak, _rss_kib()) - rss_before
    return bare, ours, lines - 1, grown_kib


def _rss_kib() -> int:
    """This process's resident memory now (the export's growth is sampled while it streams)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--import-only", action="store_true", help="only the import and its floor")
    args = parser.parse_args()
    if not (os.environ.get("BENCH_DATABASE_URL") or "").startswith("postgres"):
        sys.exit("set BENCH_DATABASE_URL to a PostgreSQL database (its tables are dropped and recreated)")
    folder = workdir()
    app = scratch_app(folder)
    rt = app.extensions["mailramp"]
    path = folder / "contacts.csv"
    write_contacts(path, args.contacts)
    print(f"{args.contacts:,} contacts, {path.stat().st_size / 1e6:.0f} MB of CSV, PostgreSQL")

    # The floor is measured before and after the import and averaged, as planning's reference is:
    # a swing in the machine's load falls on both sides.
    bare_import = bare_copy(rt, path)
    floors = [indexed_copy(rt, path)]
    ours_import, imported = mailramp_import(rt, path)
    floors.append(indexed_copy(rt, path))
    contacts_copy = sum(f[0] for f in floors) / len(floors)
    consent_copy = sum(f[1] for f in floors) / len(floors)
    indexed_import = contacts_copy + consent_copy
    print(
        f"import:  mailramp {ours_import:6.2f} s ({imported:,} rows)  COPY into the indexed tables "
        f"{indexed_import:6.2f} s  ratio {ours_import / indexed_import:5.2f}x (target <= 2x)"
    )
    print(
        f"         (the contacts table's five indexes {contacts_copy:5.2f} s, the consent history's two "
        f"{consent_copy:5.2f} s, each the mean of a COPY before and one after the import: "
        f"{floors[0][0] + floors[0][1]:.2f} s and {floors[1][0] + floors[1][1]:.2f} s; "
        f"COPY into a bare table {bare_import:5.2f} s: mailramp {ours_import / bare_import:5.2f}x)"
    )
    figures: dict[str, Any] = {
        "bench": "datapath",
        "contacts": args.contacts,
        "import_s": round(ours_import, 3),
        "import_copy_s": round(bare_import, 3),
        "import_bare_ratio": round(ours_import / bare_import, 2),
        "import_copy_indexed_s": round(indexed_import, 3),
        "import_copy_contacts_s": round(contacts_copy, 3),
        "import_copy_consent_s": round(consent_copy, 3),
        "import_copy_indexed_before_after_s": [round(a + b, 3) for a, b in floors],
        "import_ratio": round(ours_import / indexed_import, 2),
    }
    if args.import_only:
        emit(figures)
        return

    bare_plan, ours_plan, planned = plan(rt, args.batch_size)
    print(
        f"plan:    mailramp {ours_plan:6.2f} s ({planned:,} rows)  INSERT ... SELECT {bare_plan:6.2f} s  "
        f"ratio {ours_plan / bare_plan:5.2f}x (target <= 1.5x)"
    )

    with rt.session() as session:
        from models import Campaign

        campaign_id = session.scalar(sa.select(Campaign.id).where(Campaign.name == "planned"))
    bare_export, ours_export, rows, grown = export(rt, int(campaign_id))
    print(
        f"export:  mailramp {ours_export:6.2f} s ({rows:,} rows)  COPY TO STDOUT {bare_export:6.2f} s  "
        f"ratio {ours_export / bare_export:5.2f}x (target <= 2x); resident memory grew {grown / 1024:.1f} MiB while streaming"
    )
    emit(
        {
            **figures,
            "plan_s": round(ours_plan, 3),
            "plan_insert_select_s": round(bare_plan, 3),
            "plan_ratio": round(ours_plan / bare_plan, 2),
            "export_s": round(ours_export, 3),
            "export_copy_s": round(bare_export, 3),
            "export_ratio": round(ours_export / bare_export, 2),
            "export_rows": rows,
            "export_peak_memory_growth_mib": round(grown / 1024, 1),
        }
    )


if __name__ == "__main__":
    main()
