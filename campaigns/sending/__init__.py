"""The sending path: planning a wave into the ledger, sending one batch (arms, render, MIME, SMTP),
the journal of SMTP answers, the per-batch lock and the liveness of its holder."""
