"""Shared by the contacts, catalog and demo tests: an emptied database and a one-call CSV import."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from campaigns.imports.runs import importer_for
from campaigns.imports.stream import run_import, start_run
from models import ImportRun
from models.db import make_engine, make_session_factory
from tests.conftest import empty_database


@pytest.fixture()
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    empty_database(engine)
    yield make_session_factory(engine)
    empty_database(engine)
    engine.dispose()


def run_csv(
    factory: sessionmaker[Session],
    kind: str,
    data: bytes | str,
    *,
    chunk_rows: int = 2000,
    encoding: str = "utf-8",
    max_errors: int = 1000,
) -> ImportRun:
    raw = data.encode() if isinstance(data, str) else data
    with factory() as session:
        run_id = start_run(session, kind, f"test-{kind}.csv", "tester").id
        session.commit()
    return run_import(
        factory,
        run_id,
        io.BytesIO(raw),
        importer_for(kind),
        chunk_rows=chunk_rows,
        encoding=encoding,
        max_errors=max_errors,
    )


def errors_by_row(run: ImportRun) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for error in run.errors:
        found.setdefault(error["row"], []).append(error["field"])
    return found
