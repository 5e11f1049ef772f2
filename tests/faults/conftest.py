"""The fault suite runs only through `make test-faults` (MAILRAMP_FAULTS=1): it starts its own Redis
server (and, without TEST_DATABASE_URL, its own PostgreSQL cluster) and takes a few minutes. The test
of its bookkeeping (test_attribution.py) needs no server and runs in the ordinary suite."""

from __future__ import annotations

import os
from pathlib import Path

SERVERLESS = {"test_attribution.py"}
collect_ignore = (
    []
    if os.environ.get("MAILRAMP_FAULTS") == "1"
    else [p.name for p in Path(__file__).parent.glob("test_*.py") if p.name not in SERVERLESS]
)
