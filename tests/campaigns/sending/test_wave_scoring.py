"""An AI wave whose scoring fails waits (the failure recorded on the wave) instead of sending
best-sellers as AI content; once the model loads again, the resumed wave sends the model's items."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa
from rq import SimpleWorker
from sqlalchemy.orm import Session

from campaigns.jobs import WaveNotScored, resume_open_waves, send_batch_job, start_wave
from campaigns.ops import queues
from campaigns.recommender import registry, training
from campaigns.reports.results import campaign_progress
from campaigns.runtime import Runtime
from models import BlobChunk, Recommendation, Send, Wave
from tests.conftest import SmtpSink
from tests.factories import add_campaign, add_catalog, add_contacts, add_template


@pytest.fixture()
def rt(app: Any) -> Runtime:
    runtime: Runtime = app.extensions["mailramp"]
    return runtime


def drain(rt: Runtime) -> None:
    SimpleWorker(queues.all_queues(rt), connection=rt.redis).work(burst=True)


def test_a_wave_waits_for_its_scoring_and_never_sends_a_silent_fallback(
    rt: Runtime, session: Session, smtp_sink: SmtpSink
) -> None:
    add_catalog(session, add_contacts(session, 40))
    version = training.train(session, rt.blobs(), kind="popularity", evaluate=False)
    campaign = add_campaign(
        session,
        add_template(session).id,
        ai={"exposure_percent": 100, "holdout_percent": 0, "plan": "manual"},
    )
    registry.forget_cached()
    key = version.artifact_path
    good = list(session.execute(sa.select(BlobChunk.seq, BlobChunk.data).where(BlobChunk.key == key)))
    session.execute(sa.update(BlobChunk).where(BlobChunk.key == key).values(data=b"corrupt"))
    session.commit()

    wave = start_wave(rt, campaign.id, None)
    drain(rt)  # the scoring job fails (retry scheduled later); the batches depend on it
    session.expire_all()
    planned = session.get(Wave, wave["wave_id"])
    assert planned is not None and planned.scored_at is None
    assert "sha256" in planned.scoring_error
    assert "sha256" in campaign_progress(session, campaign.id)["waves"][0]["scoring_error"]
    assert Counter(session.scalars(sa.select(Send.state))) == {"queued": 40}
    assert smtp_sink.messages == []
    with pytest.raises(WaveNotScored, match="sha256"):  # a batch run by hand waits too
        send_batch_job(campaign.id, wave["wave_id"], 0)
    assert resume_open_waves(rt) == 0  # the scoring retry is scheduled: nothing to re-queue yet

    # The retries run out; the model is readable again; the periodic resume scores, then sends.
    queues.queue(rt, queues.SCORING).fetch_job(f"score-{wave['wave_id']}").delete()  # type: ignore[union-attr]
    for seq, data in good:
        session.execute(
            sa.update(BlobChunk).where(BlobChunk.key == key, BlobChunk.seq == seq).values(data=data)
        )
    session.commit()
    assert resume_open_waves(rt) == 1
    drain(rt)
    session.expire_all()
    assert Counter(session.scalars(sa.select(Send.state))) == {"sent": 40}
    assert Counter(session.scalars(sa.select(Send.content))) == {"ai": 40}
    scored = session.get(Wave, wave["wave_id"])
    assert scored is not None and scored.scored_at is not None and scored.scoring_error == ""
    stored = session.scalar(sa.select(sa.func.count()).select_from(Recommendation))
    assert stored == 40  # every contact got the model's own list, not best-sellers
