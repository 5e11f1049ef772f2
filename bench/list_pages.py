"""Time every list page of the UI on the demo workspace (the Online Retail file when it is there,
else the synthetic generator), as a logged-in marketer, through the real app and database.

    python bench/list_pages.py [--data ../shared/data/online_retail.csv.gz] [--repeat 5]

Prints the median and worst time of each page (the first request of each page included in the
worst, not in the median) and a JSON last line. The issue's bar: every list page under 500 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, scratch_app, workdir

PAGES = ["/", "/contacts", "/segments", "/catalog", "/templates", "/campaigns", "/calendar", "/outbox",
         "/rollouts", "/approvals", "/audit", "/models"]  # fmt: skip
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "online_retail.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from app.auth import create_user
    from app.extensions import db
    from campaigns.demo.workspace import build_demo
    from models import Role

    app = scratch_app(workdir(), WTF_CSRF_ENABLED=False)
    started = time.perf_counter()
    with app.test_request_context():
        summary = build_demo(db(), args.data if Path(args.data).is_file() else None)
        create_user("marketer@example.com", "correct horse battery staple", Role.marketer)
        db().commit()
        try:
            from campaigns.demo.story import build_story

            build_story(db(), app.extensions["mailramp"])
            db().commit()
        except ImportError:
            pass
    print(f"demo: {summary.source}, {summary.contacts:,} contacts, {summary.interactions:,} interactions "
          f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
    client = app.test_client()
    client.post("/login", data={"email": "marketer@example.com", "password": "correct horse battery staple"})
    figures: dict[str, float] = {}
    for page in PAGES:
        times = []
        for _ in range(args.repeat + 1):
            t0 = time.perf_counter()
            response = client.get(page)
            times.append((time.perf_counter() - t0) * 1000)
            if response.status_code == 404:
                break
            assert response.status_code == 200, (page, response.status_code)
        if response.status_code == 404:
            continue
        median = statistics.median(times[1:])
        figures[page] = round(median, 1)
        print(f"{page:<12} median {median:7.1f} ms   worst {max(times):7.1f} ms")
    emit({"bench": "list_pages", "source": summary.source, "median_ms": figures})


if __name__ == "__main__":
    main()
