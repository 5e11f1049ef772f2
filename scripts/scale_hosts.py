"""The hosts of `make test-scale`: network namespaces on one bridge, and the shared services.

Every address is in 10.254.12.0/24, inside namespaces and on a bridge this script creates (and
refuses to use when that range is already routed here). The bridge itself holds 10.254.12.1, where
the PostgreSQL cluster (initdb'd in a temporary folder) and the Redis server listen. Everything is
removed again on exit, on an error and on Ctrl-C: namespaces (with every process inside), the
bridge, both servers and the temporary folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUBNET = "10.254.12"
BRIDGE = "mr12br"
PREFIX = "mr12"
HOSTS = {"web": 10, "w1": 11, "w2": 12, "w3": 13, "smtp": 20}
PG_PORT = 55432
REDIS_PORT = 56379


def run(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def namespace(host: str) -> str:
    return f"{PREFIX}-{host}"


def address(host: str) -> str:
    return f"{SUBNET}.{HOSTS[host]}"


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no PostgreSQL {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


class Cluster:
    """Namespaces, bridge, PostgreSQL and Redis; a context manager that always cleans up."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="mailramp-scale-"))
        self.procs: list[subprocess.Popen[Any]] = []
        self.pg_data = self.tmp / "pg"
        self.redis: subprocess.Popen[Any] | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        signal.signal(signal.SIGTERM, _interrupt)
        self.down_network()  # what a crashed earlier run may have left
        if SUBNET + "." in run("ip", "-4", "route", "show"):
            raise RuntimeError(f"{SUBNET}.0/24 is already routed on this machine: not touching it")
        try:
            self.up_network()
            self.start_postgres()
            self.start_redis()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        for ns in (namespace(h) for h in HOSTS):
            self.kill_host(ns, signal.SIGKILL)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        if self.redis is not None and self.redis.poll() is None:
            self.redis.kill()
        if (self.pg_data / "postmaster.pid").exists():
            run("runuser", "-u", "postgres", "--", pg_bin("pg_ctl"), "-D", str(self.pg_data), "stop",
                "-m", "immediate", check=False)  # fmt: skip
        self.down_network()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- network -------------------------------------------------------------------------------
    def up_network(self) -> None:
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        for host in HOSTS:
            ns, outer, inner = namespace(host), f"{PREFIX}{host}h", f"{PREFIX}{host}n"
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            run("ip", "link", "set", inner, "netns", ns)
            run("ip", "link", "set", outer, "master", BRIDGE)
            run("ip", "link", "set", outer, "up")
            run("ip", "-n", ns, "addr", "add", f"{address(host)}/24", "dev", inner)
            run("ip", "-n", ns, "link", "set", inner, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def down_network(self) -> None:
        existing = run("ip", "netns", "list", check=False)
        for host in HOSTS:
            ns = namespace(host)
            if ns in existing:
                self.kill_host(ns, signal.SIGKILL)
                run("ip", "netns", "del", ns, check=False)
        if BRIDGE in run("ip", "link", "show", check=False):
            run("ip", "link", "del", BRIDGE, check=False)

    @staticmethod
    def kill_host(ns: str, sig: int) -> int:
        """Send `sig` to every process of the namespace: the host dies whole."""
        pids = [int(p) for p in run("ip", "netns", "pids", ns, check=False).split()]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        return len(pids)

    def spawn(self, host: str, argv: list[str], env: dict[str, str], log: str) -> subprocess.Popen[Any]:
        out = (self.tmp / f"{log}.log").open("ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace(host), *argv],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop_host(self, host: str, grace: float = 15.0) -> None:
        ns = namespace(host)
        self.kill_host(ns, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and run("ip", "netns", "pids", ns, check=False).split():
            time.sleep(0.3)
        self.kill_host(ns, signal.SIGKILL)

    # -- services on the bridge ----------------------------------------------------------------
    def start_postgres(self) -> None:
        self.pg_data.mkdir()
        shutil.chown(self.tmp, "postgres")
        shutil.chown(self.pg_data, "postgres")
        run("runuser", "-u", "postgres", "--", pg_bin("initdb"), "-D", str(self.pg_data), "-A", "trust",
            "-U", "postgres", "-E", "UTF8", "--no-sync")  # fmt: skip
        with (self.pg_data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {SUBNET}.0/24 trust\n")  # the hosts of this test only
        options = (
            f"-p {PG_PORT} -c listen_addresses={SUBNET}.1 -k {self.tmp} -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB"
        )
        run("runuser", "-u", "postgres", "--", pg_bin("pg_ctl"), "-D", str(self.pg_data), "-l",
            str(self.tmp / "postgres.log"), "-o", options, "-w", "-t", "120", "start")  # fmt: skip
        import psycopg

        with psycopg.connect(self.database_url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE mailramp")

    def start_redis(self) -> None:
        out = (self.tmp / "redis.log").open("ab")
        self.redis = subprocess.Popen(
            ["redis-server", "--bind", f"{SUBNET}.1", "--port", str(REDIS_PORT), "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        from redis import Redis

        deadline = time.monotonic() + 60
        while True:
            try:
                Redis.from_url(self.redis_url()).ping()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    @staticmethod
    def database_url(name: str = "mailramp") -> str:
        return f"postgresql://postgres@{SUBNET}.1:{PG_PORT}/{name}"

    @staticmethod
    def redis_url() -> str:
        return f"redis://{SUBNET}.1:{REDIS_PORT}/0"


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt
