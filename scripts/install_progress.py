"""Progress for `make install`: reads pip's output on stdin, keeps all of it in a log file, prints one
line per package pip collects, and whenever pip has said nothing for a few seconds (it installs the
collected packages silently, for minutes the first time) a line that says how far it got.

    pip install ... 2>&1 | python scripts/install_progress.py .venv/install.log .venv

Exits with 0; the Makefile takes pip's status from the pipe.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

QUIET_SECONDS = 5.0


def installed(venv: Path, since: float) -> int:
    """Packages whose metadata appeared in the venv since `since` (pip writes one per package)."""
    count = 0
    for site in venv.glob("lib/python*/site-packages"):
        for meta in site.glob("*.dist-info"):
            try:
                if meta.stat().st_mtime >= since:
                    count += 1
            except FileNotFoundError:
                continue
    return count


def main() -> None:
    log_path, venv = Path(sys.argv[1]), Path(sys.argv[2])
    started = time.time()
    state = {"last": time.monotonic(), "phase": "collecting", "total": 0, "done": False}
    lock = threading.Lock()

    def say(text: str) -> None:
        with lock:
            print(text[:100], flush=True)
            state["last"] = time.monotonic()

    def heartbeat() -> None:
        while not state["done"]:
            time.sleep(0.5)
            if time.monotonic() - float(state["last"]) < QUIET_SECONDS or state["done"]:
                continue
            elapsed = int(time.time() - started)
            if state["phase"] == "installing" and state["total"]:
                done = min(installed(venv, started), int(state["total"]))
                say(f"  ... installing: {done} of {state['total']} packages in place ({elapsed} s)")
            else:
                say(f"  ... pip is still working ({elapsed} s; full output in {log_path})")

    threading.Thread(target=heartbeat, daemon=True).start()
    with log_path.open("w", encoding="utf-8") as log:
        for line in sys.stdin:
            log.write(line)
            log.flush()
            if line.startswith("Collecting"):
                say(line.rstrip())
            elif line.startswith("Installing collected packages:"):
                names = line.split(":", 1)[1].split(",")
                state["phase"], state["total"] = "installing", len(names)
                say(f"Installing {len(names)} collected packages (pip prints nothing until it is done) ...")
            elif line.startswith(("Successfully installed", "ERROR")):
                say(line.rstrip())
    state["done"] = True


if __name__ == "__main__":
    main()
