"""Events: from a recipient's open or click to per-arm numbers an evaluation reads.

- `tokens`: signed tracking tokens; `tracking`: the request path (verify, push to Redis, answer);
  `spool`: the web process's buffer while Redis is away
- `ingest`: read the stream in batches, `classify` machine opens and bot clicks, dedupe, store
- `metrics`: per-arm aggregates kept incrementally; `metrics_rebuild`: their repair from the ledger
- `export`: raw events for warehouses (NDJSON, Parquet)

May import `models`, `campaigns.sending` (bounces, liveness), `campaigns.privacy` and the runtime;
never `campaigns.decisions` or the app.
"""
