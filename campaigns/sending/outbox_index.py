"""The local outbox's index: one row per message of the Maildir (key, received, to, subject, from,
campaign, test arm), in a SQLite file beside it, so listing and searching never open a message.

The outbox server adds a row as it accepts each message; `sync` (run before every listing) adds the
messages the index does not know (a Maildir written before the index existed, or copied in) and drops
the rows of removed files, so the index can always be deleted and rebuilt from the Maildir alone.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from pathlib import Path

INDEX_NAME = "index.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    key TEXT PRIMARY KEY,
    received_at REAL NOT NULL,
    to_addr TEXT NOT NULL,
    subject TEXT NOT NULL,
    sender TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    test_arm TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_messages_received ON messages (received_at DESC, key DESC);
CREATE TABLE IF NOT EXISTS synced (folder TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL);
"""
COLUMNS = "key, received_at, to_addr, subject, sender, campaign_id, test_arm"


@dataclass(frozen=True)
class OutboxEntry:
    key: str
    to: str
    subject: str
    sender: str
    received_at: datetime
    campaign_id: str
    test_arm: str = ""  # seed (test) sends: the arm they show, from X-Mailramp-Test


@contextmanager
def _connect(maildir: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(maildir / INDEX_NAME, timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # a lost last row comes back from the Maildir
        connection.executescript(SCHEMA)
        yield connection
        connection.commit()
    finally:
        connection.close()


def _text(value: object) -> str:
    """A header as one line of text (encoded words decoded, CR/LF and tabs folded to spaces)."""
    if value is None:
        return ""
    try:
        text = str(make_header(decode_header(str(value))))
    except (ValueError, LookupError, UnicodeError):
        text = str(value)
    return " ".join(text.split())


def entry_row(key: str, raw: bytes, received_at: float) -> tuple[str, float, str, str, str, str, str]:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(head)
    return (
        key,
        received_at,
        _text(headers.get("To")),
        _text(headers.get("Subject")),
        _text(headers.get("From")),
        _text(headers.get("X-Mailramp-Campaign")),
        _text(headers.get("X-Mailramp-Test")).lower()[:20],
    )


def add(maildir: Path, key: str, raw: bytes, received_at: float | None = None) -> None:
    """Index one message the Maildir just accepted."""
    row = entry_row(key, raw, time.time() if received_at is None else received_at)
    with _connect(maildir) as connection:
        connection.execute(f"INSERT OR REPLACE INTO messages ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row)


def _files(maildir: Path) -> dict[str, Path]:
    """The Maildir's messages by key (new/ holds bare keys, cur/ keys with ':2,flags')."""
    out: dict[str, Path] = {}
    for sub in ("new", "cur"):
        folder = maildir / sub
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            if not name.startswith("."):
                out[name.split(":", 1)[0]] = folder / name
    return out


HEAD_BYTES = 64 * 1024  # headers come first; a message's body is never read


def _folder_times(maildir: Path) -> dict[str, int]:
    out = {}
    for sub in ("new", "cur"):
        try:
            out[sub] = (maildir / sub).stat().st_mtime_ns
        except FileNotFoundError:
            out[sub] = 0
    return out


def sync(maildir: Path) -> int:
    """Bring the index in line with the Maildir; returns how many rows it added or removed. Skipped
    when neither new/ nor cur/ changed (a folder's mtime moves with every file added, moved or
    removed) since the last sync; the times are read before the listing, so a message that arrives
    during a sync is caught by the next one."""
    times = _folder_times(maildir)
    with _connect(maildir) as connection:
        if dict(connection.execute("SELECT folder, mtime_ns FROM synced").fetchall()) == times:
            return 0
    files = _files(maildir)
    with _connect(maildir) as connection:
        known = {row[0] for row in connection.execute("SELECT key FROM messages")}
        missing = files.keys() - known
        gone = known - files.keys()
        for key in missing:
            path = files[key]
            try:
                with path.open("rb") as handle:
                    raw = handle.read(HEAD_BYTES)
                stamp = path.stat().st_mtime
            except FileNotFoundError:
                continue
            row = entry_row(key, raw, stamp)
            connection.execute(
                f"INSERT OR REPLACE INTO messages ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row
            )
        connection.executemany("DELETE FROM messages WHERE key = ?", [(key,) for key in gone])
        connection.executemany("INSERT OR REPLACE INTO synced VALUES (?, ?)", list(times.items()))
    return len(missing) + len(gone)


def _like(query: str) -> str:
    escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(maildir: Path, query: str = "", limit: int = 50, offset: int = 0) -> tuple[int, list[OutboxEntry]]:
    """Newest first; `query` matches the recipient's address or name, or the subject (any case)."""
    if not maildir.exists():
        return 0, []
    sync(maildir)
    where, params = "", []
    query = " ".join(query.split())
    if query:
        where = "WHERE to_addr LIKE ? ESCAPE '\\' OR subject LIKE ? ESCAPE '\\'"
        params = [_like(query), _like(query)]
    with _connect(maildir) as connection:
        total = connection.execute(f"SELECT count(*) FROM messages {where}", params).fetchone()[0]
        rows = connection.execute(
            f"SELECT {COLUMNS} FROM messages {where} ORDER BY received_at DESC, key DESC LIMIT ? OFFSET ?",
            [*params, max(limit, 0), max(offset, 0)],
        ).fetchall()
    return total, [
        OutboxEntry(
            key=key,
            received_at=datetime.fromtimestamp(stamp, UTC),
            to=to,
            subject=subject,
            sender=sender,
            campaign_id=campaign,
            test_arm=test_arm,
        )
        for key, stamp, to, subject, sender, campaign, test_arm in rows
    ]
