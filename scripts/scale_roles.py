"""What the hosts of `make test-scale` run inside their network namespaces (see scripts/scale_test.py).

    python scripts/scale_roles.py sink --host 10.254.12.20 --port 2525 --log FILE
    python scripts/scale_roles.py setup --contacts N --campaigns 4     (on the web host)

The sink accepts every message and appends one line per message to FILE: the Message-ID's campaign
and contact, and the catalog items the HTML shows. The setup makes the workspace: contacts, a catalog,
purchase histories, a template, AI campaigns, an API token, and trains the model (printed as JSON).
"""

from __future__ import annotations

import argparse
import binascii
import json
import random
import re
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MESSAGE_ID = re.compile(rb"^Message-ID: <mr\.(\d+)\.(\d+)\.", re.MULTILINE)
ITEM = re.compile(rb">Item (\d+)<")
COUNTRIES = ("United Kingdom", "France", "Germany")
N_ITEMS = 40


class LoggingSink:
    def __init__(self, log: Path) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.out = log.open("a", buffering=1 << 20)
        threading.Thread(target=self._flush, daemon=True).start()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        found = MESSAGE_ID.search(data)
        campaign, contact = (found.group(1).decode(), found.group(2).decode()) if found else ("?", "?")
        items = ",".join(m.decode() for m in ITEM.findall(binascii.a2b_qp(data)))
        with self.lock:
            self.lines.append(f"{campaign}\t{contact}\t{items}\n")
        return "250 OK"

    def _flush(self) -> None:
        while True:
            time.sleep(0.3)
            with self.lock:
                lines, self.lines = self.lines, []
            if lines:
                self.out.write("".join(lines))
                self.out.flush()


def sink(host: str, port: int, log: Path) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(LoggingSink(log), hostname=host, port=port)
    controller.start()
    print(f"sink on {host}:{port}", flush=True)
    while True:
        time.sleep(3600)


def setup(contacts: int, campaigns: int) -> dict[str, Any]:
    import sqlalchemy as sa

    from app import create_app
    from app.auth import create_user, issue_token
    from app.extensions import db
    from campaigns.imports.stream import bulk_insert
    from campaigns.recommender import training
    from models import Contact, Interaction, Item, Role, User
    from tests.factories import add_campaign, add_template

    app = create_app()
    rt = app.extensions["mailramp"]
    rng = random.Random(12)
    now = datetime.now(UTC)
    with rt.session() as session:
        bulk_insert(
            session,
            Item,
            [
                {
                    "sku": f"SKU{i}",
                    "name": f"Item {i}",
                    "url": f"https://shop.example/items/SKU{i}",
                    "price": 5.0 + i,
                    "category": "kitchen" if i % 2 else "garden",
                    "image_url": "",
                    "enabled": True,
                    "created_at": now,
                }
                for i in range(N_ITEMS)
            ],
        )
        rows = [
            {
                "email": f"person{i}@example.com",
                "name": f"Person {i}",
                "country": COUNTRIES[i % 3],
                "timezone": "UTC",
                "consent": True,
                "status": "active",
                "attributes": {},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(contacts)
        ]
        for start in range(0, len(rows), 50_000):
            bulk_insert(session, Contact, rows[start : start + 50_000])
        session.commit()
        item_ids = list(session.scalars(sa.select(Item.id).order_by(Item.id)))
        contact_ids = list(session.scalars(sa.select(Contact.id).order_by(Contact.id)))
        # Purchase histories with structure (each contact buys around a "taste" of neighbouring
        # items), so the model's lists are personal and differ from the country best-sellers.
        history = []
        for k, contact_id in enumerate(contact_ids):
            if k % 5 == 4:
                continue  # a fifth of the contacts are cold: their lists are the best-sellers
            taste = rng.randrange(N_ITEMS)
            for _ in range(3):
                item = item_ids[(taste + rng.randrange(4)) % N_ITEMS]
                history.append(
                    {
                        "contact_id": contact_id,
                        "item_id": item,
                        "kind": "purchase",
                        "quantity": 1.0,
                        "value": 10.0,
                        "occurred_at": now - timedelta(days=rng.randrange(1, 300)),
                        "source": "import",
                    }
                )
        for start in range(0, len(history), 50_000):
            bulk_insert(session, Interaction, history[start : start + 50_000])
        session.commit()
        template = add_template(session)
        campaign_ids = [
            add_campaign(
                session,
                template.id,
                name=f"scale {n}",
                ai={"exposure_percent": 50, "holdout_percent": 5},
            ).id
            for n in range(campaigns)
        ]
        started = time.perf_counter()
        version = training.train(session, rt.blobs(), kind="blend", evaluate=False, trained_by="web host")
        train_s = time.perf_counter() - started
        result = {
            "campaign_ids": campaign_ids,
            "model_version_id": version.id,
            "artifact": version.artifact_path,
            "train_s": round(train_s, 2),
        }
    with app.test_request_context():
        user = db().scalar(sa.select(User).where(User.email == "scale@example.com"))
        user = user or create_user("scale@example.com", "scale-test-password", Role.admin)
        db().flush()
        result["token"] = issue_token(user, "scale test")
        db().commit()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="role", required=True)
    p_sink = sub.add_parser("sink")
    p_sink.add_argument("--host", required=True)
    p_sink.add_argument("--port", type=int, required=True)
    p_sink.add_argument("--log", type=Path, required=True)
    p_setup = sub.add_parser("setup")
    p_setup.add_argument("--contacts", type=int, required=True)
    p_setup.add_argument("--campaigns", type=int, default=4)
    args = parser.parse_args()
    if args.role == "sink":
        sink(args.host, args.port, args.log)
    else:
        print(json.dumps(setup(args.contacts, args.campaigns)))


if __name__ == "__main__":
    main()
