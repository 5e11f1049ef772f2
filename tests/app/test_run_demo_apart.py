"""`mailramp run` with `SMTP_URL` at a real server (a capture server here) and contacts imported while
the demo's story replays: the server receives nothing from the demo, and no real contact gets a
consent record, a send row or a campaign aimed at it. The dashboard says the story is replaying."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from campaigns.demo.story import ROLLOUT_B, SALE_SERIES
from models import Campaign, ConsentRecord, Contact, Rollout, Send
from models.db import make_engine
from tests.app.test_run import wait_for
from tests.conftest import SmtpSink, free_port

ROOT = Path(__file__).resolve().parent.parent.parent
REAL = 25


@pytest.mark.timeout(900)
def test_the_demo_never_mails_or_touches_real_contacts(tmp_path: Path) -> None:
    sink = SmtpSink(host="127.0.0.1", port=free_port())
    capture = Controller(sink, hostname=sink.host, port=sink.port)
    capture.start()
    port = free_port()
    instance = tmp_path / "instance"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    env |= {
        "SMTP_URL": sink.url,
        "MAILRAMP_INSTANCE_PATH": str(instance),
        "MAILRAMP_DEMO_DATA": "synthetic",
        "MAILRAMP_WORKERS": "1",
        "PYTHONPATH": str(ROOT),
    }
    argv = [sys.executable, "-c", "from app.cli import main; main()", "run", "--port", str(port)]
    supervisor = subprocess.Popen(
        [*argv, "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    engine = make_engine(f"sqlite:///{instance / 'mailramp.db'}")
    try:
        assert supervisor.stdout is not None
        banner = []
        while not any("mailramp is running" in line for line in banner):
            line = supervisor.stdout.readline()
            assert line, banner
            banner.append(line)
        banner.append(supervisor.stdout.readline())
        assert any(re.search(r"demo login: admin@demo\.mailramp\.test", line) for line in banner), banner

        def first_wave_planned() -> bool:
            with engine.connect() as conn:
                return conn.scalar(sa.select(sa.func.count()).select_from(Send)) > 0

        wait_for(first_wave_planned, 600, "the story's first wave")
        with engine.begin() as conn:  # an import while the story replays
            conn.execute(
                sa.insert(Contact),
                [{"email": f"real{i}@example.com", "consent": True, "status": "active"} for i in range(REAL)],
            )

        def story_done() -> bool:
            with engine.connect() as conn:
                sale = conn.scalar(sa.select(Campaign.status).where(Campaign.series == SALE_SERIES))
                rollout = conn.scalar(sa.select(Rollout.state).where(Rollout.name == ROLLOUT_B))
                return sale == "sent" and rollout not in (None, "draft", "shadow", "ramping")

        wait_for(story_done, 600, "the story to finish (the flash sale sent, its rollout decided)")
        with engine.connect() as conn:
            real = list(conn.scalars(sa.select(Contact.id).where(Contact.email.like("%@example.com"))))
            assert len(real) == REAL
            assert conn.scalar(sa.select(sa.func.count()).where(Send.contact_id.in_(real))) == 0
            assert conn.scalar(sa.select(sa.func.count()).where(ConsentRecord.contact_id.in_(real))) == 0
            assert set(conn.scalars(sa.select(Campaign.status))) == {"sent"}, "no demo campaign left to send"
        assert sink.messages == [], [m["To"] for m in sink.messages[:5]]
    finally:
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGINT)
            try:
                supervisor.wait(timeout=30)
            except subprocess.TimeoutExpired:
                supervisor.kill()
        engine.dispose()
        capture.stop()
