"""Contacts: the normalized email that identifies one, single-contact operations, the suppression
list, and the CSV import of contacts (row parsing, the portable and the PostgreSQL write paths).

May import `models`, `campaigns.audience`, `campaigns.imports` (the CSV readers) and
`campaigns.privacy`; never the sending path, the rollout or the app.
"""
