"""Flows: triggered journeys (welcome series, abandoned cart, post-purchase, win-back).

What this package owns, and where to look:
- definition (pure, pydantic): the flow definition schema, also the API's request schema.
- engine (pure): what an entry does next at a step (send, wait, branch, exit, complete); re-entry.
- triggers: recording contact events; the one door into a flow (`enter`, idempotent on the trigger
  key, re-entry rule); exits when an exit event arrives. Called from contact creation, double opt-in
  confirmation, signups and `POST /api/v1/contact-events`.
- time_triggers: segment joined, inactivity, date attribute (a periodic job).
- scheduler: the periodic job that claims due entries (`FOR UPDATE SKIP LOCKED` on PostgreSQL, a Redis
  lock on SQLite) and advances them; conditions: the facts a step needs from the database.
- sends: a send step writes a `queued` row into the send ledger of the step's hidden campaign.
- records: create / edit (versioned) / activate / pause / archive; a draft from a ready-made flow.
- library (pure): the ready-made flows (welcome, abandoned cart, post-purchase, win-back) and the email
  templates they need, as data.

The send ledger and re-entry. `sends` is unique on (campaign, contact). Each send step sends through a
hidden campaign (`kind = "flow_step"`) per (flow, version, step, generation), generation n being a
contact's n-th entry into the flow: a re-entered contact gets the step again through the next
generation's campaign, and the ledger, Message-IDs, tracking, suppression and consent checks, journal
and throttling apply unchanged. The step's campaigns share `series = "flow:<flow>:<step>"`.

Guarantees. A contact's place (step, next due time) is in `flow_entries`, so it survives restarts. A
step is sent at most once per entry: the ledger row and the entry's move past the step commit in one
transaction, and the send path never re-sends a `sent` row. An edit makes a new version; entries keep
the version they entered with. One bad entry fails alone (retried with backoff, then exited).

Where the next pieces attach:
- AI content behind a rollout: `sends.step_campaign` makes each step's hidden campaign; give it the
  step's `rollout_id` (one rollout per `series`), set `Send.rollout_id` in `sends.write_send`, and pass
  `score_first=True` to `enqueue_batches` in `scheduler.run_due` for such campaigns (send_batch_job
  refuses an unscored AI wave). `SendStep.ai_content` is stored and validated already.
- Frequency caps and quiet hours: in `scheduler.advance`, on a `Send` action before `write_send`:
  defer the entry (`next_due_at` = the allowed instant, step unchanged) or write the row with
  `Send.not_before` (the send path holds such rows until then).
- Time in tests: `scheduler.run_due(rt, clock=...)`, `time_triggers.run_time_triggers(rt, now)` and
  `models.simulated_now` around event recording (tests/campaigns/flows/helpers.py).

Imports models/, campaigns.audience, campaigns.sending (planner types), campaigns.jobs (enqueueing,
lazily); nothing imports it but contacts/privacy (event hooks, lazily), ops.periodic and app/.
"""
