"""Consent and privacy: the audit log, consent history, double opt-in, a person's data (export and
erasure), and retention of raw events and sends."""
