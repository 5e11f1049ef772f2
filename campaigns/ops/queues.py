"""The rq queues, one per kind of work, so that no kind can starve another.

A long training or a large import sits on its own queue; the worker pool (worker.py) keeps at least
one process that never takes those, so waves and ingest always have a worker. Queue names derive from
`Settings.queue_name` (the prefix); `DEFAULT` is the prefix itself, for anything not routed here.
"""

from __future__ import annotations

from typing import Any

from rq import Queue
from rq import job as rq_job
from rq.utils import import_attribute

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


# Where rq job functions lived before `campaigns/` was grouped by concept (the 2026-12 layout): a job
# queued by the previous version names its function by the old path, and must still run after an
# upgrade. Periodic job ids keep the old module path too (`campaigns.ops.periodic`), so a run
# queued before the upgrade still counts as pending.
MOVED_MODULES = {
    "campaigns.alerts": "campaigns.ops.alerts",
    "campaigns.evaluation": "campaigns.decisions.evaluation",
    "campaigns.imports": "campaigns.imports.runs",
    "campaigns.ingest": "campaigns.events.ingest",
    "campaigns.periodic": "campaigns.ops.periodic",
    "campaigns.recovery": "campaigns.ops.recovery",
    "campaigns.simulate": "campaigns.demo.simulate",
    "campaigns.demo_story": "campaigns.demo.story",
}
FORMER_MODULES = {new: old for old, new in MOVED_MODULES.items()}


class Job(rq_job.Job):
    """An rq job whose function may be named by its path before the move (`MOVED_MODULES`)."""

    @property
    def func(self) -> Any:
        name = self.func_name
        module, _, attribute = (name or "").rpartition(".")
        if not self.instance and module in MOVED_MODULES:
            return import_attribute(f"{MOVED_MODULES[module]}.{attribute}")
        return super().func


def quick_unsubscribe(worker: Any) -> None:
    """What a stopping rq worker does with its command channel, without rq's unbounded wait: rq 3.0
    joins its pubsub thread with no time limit, and that thread may have just read the UNSUBSCRIBE
    and gone back to waiting up to 60 s for a subscription. It is a daemon thread: let it lapse."""
    if worker.pubsub_thread:
        worker.pubsub.unsubscribe()
        worker.pubsub_thread.stop(timeout=1)
        worker.pubsub.close()


def queue_name(prefix: str, kind: str) -> str:
    if kind not in ALL:
        raise ValueError(f"unknown queue kind {kind!r}; one of {', '.join(ALL)}")
    return prefix if kind == DEFAULT else f"{prefix}:{kind}"


def queue(rt: Runtime, kind: str) -> Queue:
    return Queue(queue_name(rt.settings.queue_name, kind), connection=rt.redis, job_class=Job)


def names(prefix: str, kinds: tuple[str, ...] = ALL) -> list[str]:
    return [queue_name(prefix, kind) for kind in kinds]


def all_queues(rt: Runtime) -> list[Queue]:
    """Every queue in serving order: what a burst worker in a test or a one-off run drains."""
    return [queue(rt, kind) for kind in ALL]
