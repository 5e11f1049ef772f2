"""Browser tests: the real app served by werkzeug in a thread, a real rq worker draining jobs on
demand, the aiosmtpd sink, and Playwright driving Debian's Chromium.

Every test here is skipped, with the reason, when /usr/bin/chromium (or Playwright) is missing.
Screenshots of the main pages go to tests/artifacts/ (not committed) for a person to look at.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from werkzeug.serving import make_server

from tests.conftest import empty_database, free_port

CHROMIUM = os.environ.get("MAILRAMP_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PASSWORD = "correct horse battery staple"
VIEWPORT = {"width": 1366, "height": 820}  # a common laptop screen

_HERE = Path(__file__).resolve().parent


def _skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no browser: {CHROMIUM} is missing (apt-get install chromium to run the browser tests)"
    if importlib.util.find_spec("playwright") is None:
        return "Playwright (python) is not installed: pip install playwright"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    if reason is None:
        return
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def vendored_assets() -> None:
    """Chart.js is vendored by `make install`; a bare `pytest` run vendors it here (once) or says why not."""
    import importlib.util as loader

    script = Path(__file__).resolve().parents[2] / "scripts" / "vendor_assets.py"
    spec = loader.spec_from_file_location("vendor_assets", script)
    assert spec is not None and spec.loader is not None
    module = loader.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    try:  # one worker at a time (pytest-xdist): another's half-written file is never served or replaced
        with open(script) as lock:  # the script itself is the lock: no file of its own to clean up
            fcntl.flock(lock, fcntl.LOCK_EX)
            for asset in module.ASSETS:
                module.vendor(asset)
    except Exception as exc:  # offline without a vendored copy: the charts cannot be tested
        pytest.fail(f"Chart.js is not vendored and could not be fetched ({exc}); run `make install`")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def ui_port() -> int:
    return free_port()


@dataclass
class Outbox:
    """The embedded SMTP outbox (a real aiosmtpd server writing a Maildir), as `make run` starts it."""

    path: Path
    port: int

    def messages(self) -> list[Any]:
        from campaigns.sending.outbox import list_messages

        return list_messages(self.path, limit=100_000)[1]


@pytest.fixture()
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    from campaigns.sending.outbox import start_outbox

    box = Outbox(path=tmp_path / "instance" / "outbox", port=free_port())
    controller = start_outbox(box.path, port=box.port)
    yield box
    controller.stop()


@pytest.fixture()
def app(
    database_url: str, redis: Redis, redis_url: str, tmp_path: Path, outbox: Outbox, ui_port: int
) -> Iterator[Flask]:
    """The real app with CSRF switched on, sending to the embedded outbox, its links pointing at the
    live server."""
    from app import create_app
    from models.db import make_engine

    engine = make_engine(database_url)
    empty_database(engine)
    flask_app = create_app(
        {
            "SECRET_KEY": "ui-test-secret-key-not-for-production",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SMTP_URL": f"smtp://127.0.0.1:{outbox.port}",
            "OUTBOX_PORT": outbox.port,
            "BASE_URL": f"http://127.0.0.1:{ui_port}",
            "WTF_CSRF_ENABLED": True,
            "LOGIN_ATTEMPTS_PER_MINUTE": 50,
            "BATCH_SIZE": 100,
        },
        instance_path=str(tmp_path / "instance"),
    )
    yield flask_app
    flask_app.extensions["mailramp"].session_factory.kw["bind"].dispose()
    empty_database(engine)
    engine.dispose()


@pytest.fixture()
def live_server(app: Flask, ui_port: int) -> Iterator[str]:
    server = make_server("127.0.0.1", ui_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{ui_port}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture()
def run_jobs(app: Flask) -> Callable[[], int]:
    """Drain the queue with a real rq worker (SimpleWorker, burst mode, in this thread)."""
    from rq import SimpleWorker

    from campaigns.ops.queues import all_queues

    runtime = app.extensions["mailramp"]

    def drain() -> int:
        every = all_queues(runtime)

        def settled() -> int:
            return sum(q.finished_job_registry.count + q.failed_job_registry.count for q in every)

        done = 0
        while any(len(q) or q.deferred_job_registry.count or q.scheduled_job_registry.count for q in every):
            before = settled()
            worker = SimpleWorker(every, connection=runtime.redis)
            worker.work(burst=True, with_scheduler=False, logging_level="WARNING")
            after = settled()
            if after == before:
                break
            done += after - before
        failed = [j for q in every for j in q.failed_job_registry.get_job_ids()]
        assert not failed, f"jobs failed: {failed}"
        return done

    return drain


@dataclass
class Users:
    emails: dict[str, str]
    password: str = PASSWORD


@pytest.fixture()
def users(app: Flask) -> Users:
    from app.auth import create_user
    from app.extensions import db
    from models import Role

    with app.test_request_context():
        for role in Role:
            create_user(f"{role.value}@example.com", PASSWORD, role, name=f"{role.value.title()} Person")
        db().commit()
    return Users({role.value: f"{role.value}@example.com" for role in Role})


class Dialogs:
    """What the page's confirmation dialogs said; accepted unless `accept` is set to False."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.accept = True

    def __call__(self, dialog: Any) -> None:
        self.messages.append(dialog.message)
        if self.accept:
            dialog.accept()
        else:
            dialog.dismiss()


_DIALOGS: dict[int, Dialogs] = {}


def dialogs(page: Any) -> Dialogs:
    """The dialog log of a page made by `new_page` (or `login`)."""
    return _DIALOGS[id(page)]


@pytest.fixture()
def new_page(browser: Any, live_server: str) -> Iterator[Callable[[], Any]]:
    """Fresh browser contexts (separate cookies), one per person in the test."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context(base_url=live_server, viewport=VIEWPORT)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        log = _DIALOGS[id(page)] = Dialogs()
        page.on("dialog", log)  # confirmations: accepted (the test means it) unless a test says not
        return page

    yield make
    for context in contexts:
        context.close()
    _DIALOGS.clear()


@pytest.fixture()
def login(new_page: Callable[[], Any], users: Users) -> Callable[[str], Any]:
    def as_role(role: str) -> Any:
        page = new_page()
        page.goto("/login")
        page.get_by_label("Email").fill(users.emails[role])
        page.get_by_label("Password").fill(users.password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/")
        return page

    return as_role


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
