"""DATA's dot-stuffing (RFC 5321 4.5.2): looked for before it is done, the same bytes as always
substituting."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from campaigns.sending.delivery import dot_stuffed

LINE_START_DOT = re.compile(rb"(?m)^\.")


def substituted(data: bytes) -> bytes:
    body = LINE_START_DOT.sub(b"..", data)
    return body if body.endswith(b"\r\n") else body + b"\r\n"


@given(st.lists(st.sampled_from([b".", b"..", b"\r\n", b"\n", b"\r", b"a", b"=2E", b" ."]), max_size=40))
def test_the_same_bytes_as_the_substitution(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert dot_stuffed(data) == substituted(data)


def test_lines_starting_with_a_dot_get_another() -> None:
    assert dot_stuffed(b".hidden\r\nok\r\n.\r\n") == b"..hidden\r\nok\r\n..\r\n"
    assert dot_stuffed(b"no dots at line starts. none.\r\n") == b"no dots at line starts. none.\r\n"
    assert dot_stuffed(b"no final line end") == b"no final line end\r\n"
