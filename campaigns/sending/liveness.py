"""Is the process that holds a batch still alive? Used to take over work from a killed worker at once
on the same host; elsewhere, a holder is presumed dead only when its lock or heartbeat expires."""

from __future__ import annotations

import os
import socket
import uuid

HOST = socket.gethostname()


def holder_token() -> str:
    return f"{HOST}|{os.getpid()}|{uuid.uuid4().hex[:8]}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder_is_dead(token: str) -> bool:
    """True only when the holder ran on this host and its process is gone."""
    parts = token.split("|")
    if len(parts) != 3 or parts[0] != HOST:
        return False
    try:
        return not pid_alive(int(parts[1]))
    except ValueError:
        return False
