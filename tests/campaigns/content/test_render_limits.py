"""The render's output is joined in batches and refused as soon as it passes the limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from campaigns.content.render_limits import JOIN_EVERY, TemplateLimitError, joined


def test_joined_is_the_whole_output_whatever_the_chunking() -> None:
    chunks = [str(i) * (i % 3) for i in range(JOIN_EVERY * 3 + 5)]  # empty chunks included
    assert joined(iter(chunks), 10_000) == "".join(chunks)
    assert joined(iter([]), 10) == ""


def test_joined_stops_pulling_soon_after_the_limit() -> None:
    pulled = 0

    def endless() -> Iterator[str]:
        nonlocal pulled
        while True:
            pulled += 1
            yield "abcdefghij"

    with pytest.raises(TemplateLimitError, match="over 1,000 characters"):
        joined(endless(), 1_000)
    assert pulled <= 1_000 // 10 + JOIN_EVERY
