"""The local outbox's index: written by the SMTP server as it accepts each message, sorted by a stored
column, searched by address and subject, and rebuilt from the Maildir when it is missing or stale."""

from __future__ import annotations

import smtplib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from campaigns.sending import outbox_index
from campaigns.sending.outbox import list_messages, read_message, start_outbox
from tests.conftest import free_port


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    path, port = tmp_path / "outbox", free_port()
    controller = start_outbox(path, port=port)
    yield path, port
    controller.stop()


def send(port: int, to: str, subject: str, extra: str = "") -> None:
    body = (
        f"From: shop@example.com\r\nTo: {to}\r\nSubject: {subject}\r\n{extra}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n"
    )
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("shop@example.com", [to.split("<")[-1].rstrip(">")], body.encode())


def rows(path: Path) -> int:
    with sqlite3.connect(path / outbox_index.INDEX_NAME) as connection:
        return int(connection.execute("SELECT count(*) FROM messages").fetchone()[0])


def test_the_server_indexes_each_message_and_the_list_never_opens_one(
    server: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, port = server
    for i in range(7):
        send(port, f"Person {i} <p{i}@example.com>", f"Picks #{i}", f"X-Mailramp-Campaign: {i % 2 + 1}\r\n")
    send(port, "t@example.com", "=?utf-8?q?Caf=C3=A9_picks?=", "X-Mailramp-Test: ai\r\n")
    assert rows(path) == 8  # written on accept, before anyone lists
    monkeypatch.setattr(outbox_index, "entry_row", _must_not_parse)  # listing reads the index only
    total, page = list_messages(path, limit=3)
    assert total == 8 and [e.subject for e in page] == ["Café picks", "Picks #6", "Picks #5"]
    assert (
        page[0].test_arm == "ai" and page[1].campaign_id == "1" and page[1].to == "Person 6 <p6@example.com>"
    )
    total, second = list_messages(path, limit=3, offset=3)
    assert [e.subject for e in second] == ["Picks #4", "Picks #3", "Picks #2"]
    assert list_messages(path, query="p3@EXAMPLE")[0] == 1  # address, any case
    assert [e.subject for e in list_messages(path, query="café")[1]] == ["Café picks"]  # decoded subject
    assert list_messages(path, query="Person 5")[0] == 1  # the recipient's name
    assert list_messages(path, query="100%")[0] == 0 and list_messages(path, query="_")[0] == 0  # literal
    message = read_message(path, page[1].key)
    assert message is not None and message["Subject"] == "Picks #6"


def _must_not_parse(*args: object) -> None:
    raise AssertionError("a listing parsed a message")


def test_the_index_is_rebuilt_from_the_maildir(server: tuple[Path, int]) -> None:
    path, port = server
    for i in range(4):
        send(port, f"p{i}@example.com", f"Subject {i}")
    (path / outbox_index.INDEX_NAME).unlink()
    for suffix in ("-wal", "-shm"):
        (path / f"{outbox_index.INDEX_NAME}{suffix}").unlink(missing_ok=True)
    total, page = list_messages(path, limit=10)
    assert total == 4 and {e.subject for e in page} == {f"Subject {i}" for i in range(4)}
    gone = next((path / "new").iterdir())
    gone.unlink()  # a message removed by hand drops out of the index
    assert list_messages(path)[0] == 3
    assert read_message(path, "no-such-key") is None


def test_header_injection_stays_in_its_field(server: tuple[Path, int]) -> None:
    path, port = server
    send(port, "p@example.com", "=?utf-8?q?Hi=0D=0AX-Evil:_1?=")
    total, page = list_messages(path)
    assert total == 1 and page[0].subject == "Hi X-Evil: 1"  # CR/LF folded into one line
