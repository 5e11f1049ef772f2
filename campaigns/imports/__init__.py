"""CSV imports of every kind: reading rows with their line numbers (`csv_rows`), streaming them to
an importer chunk by chunk with a per-row error report (`stream`), duplicate keys within a file
(`seen_keys`), and import runs: accept an upload, run it inline or as an rq job (`runs`).

`csv_rows`, `stream` and `seen_keys` import nothing but `campaigns.errors`; `runs` orchestrates the
importers of `campaigns.contacts` and `campaigns.catalog`.
"""
