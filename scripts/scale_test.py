"""`make test-scale`: one AI wave sent by 1, 2 and 3 worker hosts, then by 3 with one killed mid-wave.

Hosts are network namespaces on a bridge (scripts/scale_hosts.py): `web` (gunicorn, the cron
scheduler, the workspace setup and the model training), `w1`..`w3` (each `python worker.py`), `smtp`
(an aiosmtpd sink logging what it receives). PostgreSQL (initdb'd for the run) and Redis listen on
the bridge. No host has SECRET_KEY: they share the one kept in the database; the model trained on
the web host is loaded by the worker hosts from the database.

For each run it prints emails/s (the whole wave: API call to last ledger row sent) and checks that
every planned send reached the sink once (0 skipped, 0 duplicates; after the kill at most one per
killed worker process), that no treatment send fell back, and that treatment messages show the
model's own top item. It ends with one JSON line. Needs root (ip netns).

    .venv/bin/python scripts/scale_test.py [--contacts 100000] [--workers-per-host 1] [--timeout-minutes 60]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.scale_hosts import Cluster, address  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")


class Deadline:
    def __init__(self, minutes: float) -> None:
        self.at = time.monotonic() + minutes * 60

    def check(self, what: str) -> None:
        if time.monotonic() > self.at:
            raise TimeoutError(f"the scale test ran out of time while {what}")


def host_env(cluster: Cluster, batch_size: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY" and not k.startswith("MAILRAMP_")}
    env.update(
        DATABASE_URL=cluster.database_url(),
        REDIS_URL=cluster.redis_url(),
        SMTP_URL=f"smtp://{address('smtp')}:2525",
        MAILRAMP_BASE_URL=f"http://{address('web')}:5000",
        MAILRAMP_BATCH_SIZE=str(batch_size),
        # Throttling configured but not binding (every check made): the default 100 emails/s for
        # domains outside the named groups is one Redis bucket shared by every host, and would cap
        # every run at that rate whatever the number of hosts.
        MAILRAMP_THROTTLE=json.dumps(
            {"other": {"rate_per_second": 1_000_000, "burst": 1_000_000, "concurrency": 4}}
        ),
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    return env


def wait_for(what: str, test: Any, deadline: Deadline, every: float = 0.5) -> Any:
    while True:
        value = test()
        if value:
            return value
        deadline.check(what)
        time.sleep(every)


def api(token: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"http://{address('web')}:5000/api/v1{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def sink_lines(cluster: Cluster) -> list[tuple[str, str, str]]:
    path = cluster.tmp / "sink.tsv"
    if not path.exists():
        return []
    return [tuple(line.rstrip("\n").split("\t")) for line in path.open() if line.count("\t") == 2]  # type: ignore[misc]


def ledger(engine: Any, campaign_id: int) -> Counter[str]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT state, count(*) FROM sends WHERE campaign_id = :c GROUP BY state"),
            {"c": campaign_id},
        ).all()
    return Counter({state: int(n) for state, n in rows})


def run_wave(
    cluster: Cluster, engine: Any, env: dict[str, str], token: str, campaign_id: int, hosts: int,
    workers: int, deadline: Deadline, kill_host: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    from redis import Redis
    from rq import Worker

    redis = Redis.from_url(cluster.redis_url())
    names = [f"w{i}" for i in range(1, hosts + 1)]
    for name in names:
        cluster.spawn(name, [PYTHON, "worker.py", "--workers", str(workers)], env, f"worker-{name}")
    wait_for(
        "worker hosts registered", lambda: len(Worker.all(connection=redis)) >= hosts * workers, deadline
    )
    started = time.perf_counter()
    wave = api(token, f"/campaigns/{campaign_id}/waves", {})
    planned = int(wave.get("planned") or wave.get("wave", {}).get("planned") or 0)
    killed_at = None
    while True:
        states = ledger(engine, campaign_id)
        done = states["sent"] + states["failed"]
        if planned and done >= planned:
            break
        if kill_host and killed_at is None and done >= planned * 0.3:
            killed = cluster.kill_host(f"mr12-{kill_host}", 9)
            killed_at = done
            print(
                f"  killed host {kill_host} whole ({killed} processes) at {done:,} of {planned:,} sent",
                flush=True,
            )
        deadline.check(f"sending campaign {campaign_id} with {hosts} hosts ({done:,} of {planned:,})")
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    for name in names:
        cluster.stop_host(name)
    redis.close()
    time.sleep(1.0)  # the sink flushes its log every 0.3 s
    return {
        "hosts": hosts,
        "planned": planned,
        "seconds": elapsed,
        "states": dict(states),
        "killed_at": killed_at,
    }


def check_delivery(cluster: Cluster, campaign_id: int, planned: int, bound: int) -> dict[str, int]:
    received = Counter(contact for c, contact, _ in sink_lines(cluster) if c == str(campaign_id))
    duplicates = sum(n - 1 for n in received.values())
    skipped = planned - len(received)
    if skipped != 0 or duplicates > bound:
        raise AssertionError(
            f"campaign {campaign_id}: {skipped} skipped, {duplicates} duplicates (bound {bound})"
        )
    return {"skipped": skipped, "duplicates": duplicates}


def check_model_items(cluster: Cluster, engine: Any, campaign_id: int, version_id: int) -> dict[str, int]:
    """Treatment sends are AI content, and each warm contact's message shows the model's top item."""
    import sqlalchemy as sa

    shown = {
        contact: items.split(",") if items else []
        for c, contact, items in sink_lines(cluster)
        if c == str(campaign_id)
    }
    with engine.connect() as conn:
        contents = Counter(
            dict(conn.execute(
                sa.text("SELECT content, count(*) FROM sends WHERE campaign_id = :c AND arm = 'treatment' GROUP BY content"),
                {"c": campaign_id},
            ).all())
        )  # fmt: skip
        top = conn.execute(
            sa.text(
                "SELECT s.contact_id, i.name FROM sends s JOIN recommendations r ON r.contact_id = s.contact_id "
                "AND r.model_version_id = :v JOIN items i ON i.id = (r.items -> 0 ->> 'item_id')::bigint "
                "WHERE s.campaign_id = :c AND s.arm = 'treatment'"
            ),
            {"c": campaign_id, "v": version_id},
        ).all()
        best = [
            row[0]
            for row in conn.execute(
                sa.text(
                    "SELECT i.name FROM interactions x JOIN items i ON i.id = x.item_id "
                    "GROUP BY i.name ORDER BY count(*) DESC LIMIT 6"
                )
            )
        ]
    if contents.get("fallback") or not contents.get("ai"):
        raise AssertionError(f"campaign {campaign_id}: treatment content {dict(contents)}")
    missing = [c for c, name in top if name.removeprefix("Item ") not in shown.get(str(c), [])]
    personal = sum(
        1 for c, _ in top if shown.get(str(c), [])[: len(best)] != [b.removeprefix("Item ") for b in best]
    )
    if missing or not top or personal == 0:
        raise AssertionError(
            f"campaign {campaign_id}: {len(missing)} of {len(top)} treatment messages lack the model's top item; "
            f"{personal} differ from the best-sellers"
        )
    return {
        "treatment_ai": int(contents["ai"]),
        "checked_top_item": len(top),
        "differ_from_best_sellers": personal,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--workers-per-host", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--timeout-minutes", type=float, default=60)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("make test-scale needs root (it creates network namespaces)")
    deadline = Deadline(args.timeout_minutes)
    import sqlalchemy as sa

    with Cluster() as cluster:
        env = host_env(cluster, args.batch_size)
        from app import migrate
        from models.db import make_engine

        migrate.upgrade(cluster.database_url())
        cluster.spawn("smtp", [PYTHON, "scripts/scale_roles.py", "sink", "--host", address("smtp"), "--port", "2525",
                               "--log", str(cluster.tmp / "sink.tsv")], env, "sink")  # fmt: skip
        print(f"setting up {args.contacts:,} contacts and training the model on the web host ...", flush=True)
        setup_out = cluster.tmp / "setup.json"
        done = cluster.spawn("web", [PYTHON, "scripts/scale_roles.py", "setup", "--contacts", str(args.contacts)],
                             env, "setup")  # fmt: skip
        wait_for("setting up the workspace", lambda: done.poll() is not None, deadline)
        if done.returncode != 0:
            raise RuntimeError(
                f"setup failed: see {cluster.tmp / 'setup.log'}: {(cluster.tmp / 'setup.log').read_text()[-2000:]}"
            )
        setup = json.loads((cluster.tmp / "setup.log").read_text().strip().splitlines()[-1])
        setup_out.write_text(json.dumps(setup))
        print(f"  model version {setup['model_version_id']} trained on the web host in {setup['train_s']} s, "
              f"stored as {setup['artifact']} in the database", flush=True)  # fmt: skip
        cluster.spawn("web", [str(ROOT / ".venv" / "bin" / "gunicorn"), "--workers", "2", "--bind",
                              f"{address('web')}:5000", "app:create_app()"], env, "web")  # fmt: skip
        cluster.spawn("web", [PYTHON, "worker.py", "--cron-only"], env, "cron")
        wait_for("the web host", lambda: _up(f"http://{address('web')}:5000/api/v1/openapi.json"), deadline)
        engine = make_engine(cluster.database_url())
        runs = []
        for hosts, campaign_id in zip((1, 2, 3), setup["campaign_ids"][:3], strict=True):
            print(f"wave of campaign {campaign_id} with {hosts} worker host(s) ...", flush=True)
            result = run_wave(
                cluster, engine, env, setup["token"], campaign_id, hosts, args.workers_per_host, deadline
            )
            result.update(check_delivery(cluster, campaign_id, result["planned"], bound=0))
            result.update(check_model_items(cluster, engine, campaign_id, setup["model_version_id"]))
            result["emails_per_s"] = result["planned"] / result["seconds"]
            runs.append(result)
            print(f"  {result['planned']:,} emails in {result['seconds']:.1f} s: {result['emails_per_s']:,.0f} emails/s; "
                  f"0 skipped, 0 duplicates; {result['checked_top_item']:,} treatment messages show the model's top item",
                  flush=True)  # fmt: skip
        kill_campaign = setup["campaign_ids"][3]
        print(f"wave of campaign {kill_campaign} with 3 worker hosts, w3 killed whole at 30% ...", flush=True)
        killed = run_wave(
            cluster, engine, env, setup["token"], kill_campaign, 3, args.workers_per_host, deadline, "w3"
        )
        killed.update(check_delivery(cluster, kill_campaign, killed["planned"], bound=args.workers_per_host))
        killed.update(check_model_items(cluster, engine, kill_campaign, setup["model_version_id"]))
        print(f"  every contact received it: {killed['skipped']} skipped, {killed['duplicates']} duplicates "
              f"(bound {args.workers_per_host}); {killed['seconds']:.1f} s", flush=True)  # fmt: skip
        with engine.connect() as conn:
            secrets_kept = conn.execute(sa.text("SELECT count(*) FROM instance_secrets")).scalar()
        engine.dispose()
    base = runs[0]["emails_per_s"]
    print("\nhosts  emails/s  scaling efficiency")
    for r in runs:
        r["efficiency"] = r["emails_per_s"] / (r["hosts"] * base)
        print(f"{r['hosts']:>5}  {r['emails_per_s']:8,.0f}  {r['efficiency']:6.0%}")
    print(json.dumps({
        "bench": "scale", "contacts": args.contacts, "workers_per_host": args.workers_per_host,
        "emails_per_s": {str(r["hosts"]): round(r["emails_per_s"], 1) for r in runs},
        "efficiency": {str(r["hosts"]): round(r["efficiency"], 3) for r in runs},
        "skipped": sum(r["skipped"] for r in runs) + killed["skipped"],
        "duplicates": sum(r["duplicates"] for r in runs) + killed["duplicates"],
        "kill_run": {"seconds": round(killed["seconds"], 1), "duplicates": killed["duplicates"], "skipped": killed["skipped"]},
        "shared_secret_rows": secrets_kept, "model_trained_on": "web", "train_s": setup["train_s"],
    }, sort_keys=True))  # fmt: skip


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except Exception:
        return False


if __name__ == "__main__":
    main()
