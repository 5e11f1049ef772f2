"""The sending path: planning a wave into the ledger (and previewing one before it is sent), sending
one batch (arms, render, MIME, SMTP), the journal of SMTP answers, the per-batch lock and the liveness
of its holder, and the local SMTP outbox with its index."""
