"""The rq queues, one per kind of work, so that no kind can starve another.

A long training or a large import sits on its own queue; the worker pool (worker.py) keeps at least
one process that never takes those, so waves and ingest always have a worker. Queue names derive from
`Settings.queue_name` (the prefix); `DEFAULT` is the prefix itself, for anything not routed here.
"""

from __future__ import annotations

from rq import Queue

from campaigns.runtime import Runtime

INGEST = "ingest"
SENDING = "sending"
SCORING = "scoring"
WEBHOOKS = "webhooks"
DEFAULT = "default"
IMPORTS = "imports"
TRAINING = "training"

# In the order a worker serves them: short, time-critical work first.
FAST = (INGEST, SENDING, SCORING, WEBHOOKS, DEFAULT)
SLOW = (IMPORTS, TRAINING)
ALL = FAST + SLOW


def queue_name(prefix: str, kind: str) -> str:
    if kind not in ALL:
        raise ValueError(f"unknown queue kind {kind!r}; one of {', '.join(ALL)}")
    return prefix if kind == DEFAULT else f"{prefix}:{kind}"


def queue(rt: Runtime, kind: str) -> Queue:
    return Queue(queue_name(rt.settings.queue_name, kind), connection=rt.redis)


def names(prefix: str, kinds: tuple[str, ...] = ALL) -> list[str]:
    return [queue_name(prefix, kind) for kind in kinds]


def all_queues(rt: Runtime) -> list[Queue]:
    """Every queue in serving order: what a burst worker in a test or a one-off run drains."""
    return [queue(rt, kind) for kind in ALL]
