"""The send bench's peers: an SMTP sink (Postfix's `smtp-sink` when installed: C, about 0.05 ms of CPU
per message; else aiosmtpd, as much CPU per message as the worker), optionally offering PIPELINING, a proxy that delays each direction by half a round trip, and bare smtplib clients that
give the sink's own acceptance rate over N connections."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import smtplib
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def smtp_sink_path() -> str | None:
    """Postfix's smtp-sink (Debian package `postfix`; `make bench` installs it where it can)."""
    return shutil.which("smtp-sink") or next(
        (p for p in ("/usr/sbin/smtp-sink", "/usr/lib/postfix/smtp-sink") if Path(p).exists()), None
    )


def start_sink(port: int, pipelining: bool, aiosmtpd: bool = False) -> tuple[str, Any]:
    """The sink on 127.0.0.1:`port`, accepting every message: ("smtp-sink" | "aiosmtpd", its process,
    a Popen or a multiprocessing.Process, both with `pid` and `terminate()`); ready when it returns."""
    binary = None if aiosmtpd else smtp_sink_path()
    if binary:
        argv = [binary, *([] if pipelining else ["-P"])]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # smtp-sink refuses to run as root without it
        process: Any = subprocess.Popen([*argv, f"127.0.0.1:{port}", "256"], stdin=subprocess.DEVNULL)
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return "smtp-sink", process
            if process.poll() is not None:
                break
            time.sleep(0.05)
        process.terminate()
        raise RuntimeError(f"smtp-sink did not start on port {port}")
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=run_sink, args=(port, ready, pipelining), daemon=True)
    process.start()
    ready.wait(10)
    return "aiosmtpd", process


class CountingSink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


class PipeliningSink(CountingSink):
    """Offers PIPELINING (RFC 2920) in its EHLO reply, as production MTAs do; aiosmtpd reads
    pipelined commands one after another either way."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [responses[0], "250-PIPELINING", *responses[1:]]


def run_sink(port: int, ready: Any, pipelining: bool = False) -> None:
    from aiosmtpd.controller import Controller

    handler = PipeliningSink() if pipelining else CountingSink()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def run_delay_proxy(listen: int, target: int, rtt_ms: float, ready: Any) -> None:
    """A TCP proxy on `listen` to the sink on `target` that hands on every chunk rtt_ms/2 after it
    arrived, in order, in both directions: the sink as a server that far away (the kernel's netem
    is not available on every machine)."""
    import asyncio

    delay = rtt_ms / 2000

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def forward() -> None:
            while True:
                due, data = await chunks.get()
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.create_task(forward())
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                data = b""
            chunks.put_nowait((loop.time() + delay, data))
            if not data:
                break
        with contextlib.suppress(ConnectionError):
            await sender

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", listen)
        ready.set()
        await server.serve_forever()

    asyncio.run(serve())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_rate(port: int, messages: list[bytes]) -> float:
    smtp = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for i, data in enumerate(messages):
        smtp.sendmail("shop@example.com", [f"person{i}@example.com"], data)
    elapsed = time.perf_counter() - started
    smtp.quit()
    return len(messages) / elapsed


def _raw_client(port: int, messages: list[bytes], start: Any, done: Any) -> None:
    smtp = smtplib.SMTP("127.0.0.1", port)
    start.wait()
    for i, data in enumerate(messages):
        smtp.sendmail("shop@example.com", [f"person{i}@example.com"], data)
    done.put(time.perf_counter())
    smtp.quit()


def raw_rate_parallel(port: int, messages: list[bytes], connections: int) -> float:
    """The sink's acceptance rate over `connections` bare smtplib clients, one process each."""
    start, done = multiprocessing.Event(), multiprocessing.Queue()
    share = len(messages) // connections
    clients = [
        multiprocessing.Process(
            target=_raw_client, args=(port, messages[i * share : (i + 1) * share], start, done)
        )
        for i in range(connections)
    ]
    for c in clients:
        c.start()
    time.sleep(0.5)  # every client connected and waiting
    started = time.perf_counter()
    start.set()
    finished = max(done.get(timeout=600) for _ in clients)
    for c in clients:
        c.join()
    return share * connections / (finished - started)
