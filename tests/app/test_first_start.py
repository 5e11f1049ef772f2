"""First start on an empty PostgreSQL database with no SECRET_KEY, without hand steps: `mailramp db
upgrade` works before the app can be built (the shared key's table comes with the migrations), and
`mailramp run` (what `make run` calls) migrates, makes the shared key and serves the login page.
Runs only against PostgreSQL (TEST_DATABASE_URL), in a schema of its own in this worker's database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from models.db import make_engine
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgres"),
    reason="needs TEST_DATABASE_URL (PostgreSQL)",
)


@pytest.mark.timeout(600)
def test_db_upgrade_and_run_on_an_empty_postgresql_without_secret_key(
    tmp_path: Path, database_url: str
) -> None:
    schema = f"first_start_{uuid.uuid4().hex[:8]}"
    admin = make_engine(database_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    database = f"{database_url}{'&' if '?' in database_url else '?'}options=-csearch_path%3D{schema}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "SECRET_KEY")
    }
    env |= {
        "DATABASE_URL": database,
        "MAILRAMP_INSTANCE_PATH": str(tmp_path / "instance"),
        "MAILRAMP_OUTBOX_PORT": str(free_port()),
        "MAILRAMP_DEMO_DATA": "synthetic",
        "PYTHONPATH": str(ROOT),
    }
    mailramp = [sys.executable, "-c", "from app.cli import main; main()"]
    port = free_port()
    supervisor = None
    try:
        upgraded = subprocess.run(
            [*mailramp, "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert upgraded.returncode == 0, upgraded.stderr[-2000:]
        supervisor = subprocess.Popen(
            [*mailramp, "run", "--port", str(port), "--workers", "1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert supervisor.stdout is not None
        lines: list[str] = []
        while not any("mailramp is running" in line for line in lines):
            line = supervisor.stdout.readline()
            assert line, "".join(lines)  # it stopped before serving
            lines.append(line)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=30) as page:
            assert page.status == 200
            assert b"password" in page.read().lower()
        with admin.connect() as conn:
            assert conn.scalar(sa.text(f"SELECT count(*) FROM {schema}.instance_secrets")) == 1
    finally:
        if supervisor is not None and supervisor.poll() is None:
            supervisor.send_signal(signal.SIGINT)
            try:
                supervisor.wait(timeout=30)
            except subprocess.TimeoutExpired:
                supervisor.kill()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
