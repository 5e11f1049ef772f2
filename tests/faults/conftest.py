"""The fault suite runs only through `make test-faults` (MAILRAMP_FAULTS=1): it starts its own Redis
server (and, without TEST_DATABASE_URL, its own PostgreSQL cluster) and takes a few minutes."""

from __future__ import annotations

import os

collect_ignore_glob = [] if os.environ.get("MAILRAMP_FAULTS") == "1" else ["test_*.py"]
