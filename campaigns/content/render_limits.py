"""Bounds on what one template render may cost: the size of any value it builds, the size of its
output, and its time (README, configuration: TEMPLATE_MAX_OUTPUT, TEMPLATE_RENDER_SECONDS).

Sizes are checked before an operation that could build a huge value (`'a' * 30000000`,
`'x' | center(10**9)`, `'%999999999s' % 1`) and on every result. Time is bounded by one watchdog
thread for the whole process: a render registers its thread with a deadline, and a render still
running past it gets `TemplateLimitError` raised inside it (at the next bytecode: Jinja templates are
pure Python), whatever thread it runs in. Registering costs a dict write, not a thread per render.
"""

from __future__ import annotations

import ctypes
import functools
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any

from jinja2.sandbox import SecurityError


class TemplateLimitError(SecurityError):
    """A template went past a size or time limit."""


_WIDTH = re.compile(r"%[-+ #0]*(\d+)")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple | dict) else 0


def check_args(limit: int, args: Iterable[Any]) -> None:
    """An int argument above the limit (a width, a repeat count) could build a huge value."""
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > limit:
            raise TemplateLimitError(f"a number above {limit:,} cannot be used here")


def check_result(limit: int, value: Any) -> Any:
    if _size(value) > limit:
        raise TemplateLimitError(f"a value of over {limit:,} characters or items")
    return value


def check_binop(limit: int, operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if _size(seq) and isinstance(times, int) and _size(seq) * times > limit:
                raise TemplateLimitError(f"a value of over {limit:,} characters or items")
    elif operator == "+":
        if _size(left) + _size(right) > limit:
            raise TemplateLimitError(f"a value of over {limit:,} characters or items")
    elif operator == "**":
        if isinstance(right, int | float) and abs(right) > 1000:
            raise TemplateLimitError("an exponent above 1,000")
    elif operator == "%" and isinstance(left, str):
        check_args(limit, [int(w) for w in _WIDTH.findall(left)])


def guarded_filter(limit: Callable[[], int], func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)  # keeps jinja's pass_context/pass_environment marker
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        check_args(limit(), list(args[1:]) + list(kwargs.values()))
        return check_result(limit(), func(*args, **kwargs))

    return wrapped


JOIN_EVERY = 32  # chunks taken and joined at a time (in C) between two looks at the size


def joined(chunks: Iterator[str], limit: int) -> str:
    """The render's output, refused once it passes `limit` characters. Each chunk is one expression's
    value or one piece of literal text (values are refused past `limit` where they are made), so at
    most JOIN_EVERY of them are held before the size is looked at."""
    parts: list[str] = []
    total = 0
    while batch := list(islice(chunks, JOIN_EVERY)):
        part = "".join(batch)
        total += len(part)
        if total > limit:
            raise TemplateLimitError(f"the rendered text is over {limit:,} characters")
        parts.append(part)
    return "".join(parts)


class _Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadlines: dict[int, float] = {}
        self._fired: set[int] = set()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            with self._lock:
                for ident, deadline in list(self._deadlines.items()):
                    if now > deadline and ident not in self._fired:
                        self._fired.add(ident)
                        _raise_in(ident, TemplateLimitError)

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        ident = threading.get_ident()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="template-watchdog", daemon=True)
                self._thread.start()
            outer = self._deadlines.get(ident)
            self._deadlines[ident] = time.monotonic() + seconds if outer is None else outer
        try:
            yield
        except TemplateLimitError:
            with self._lock:
                timed_out = outer is None and ident in self._fired
            if timed_out:
                raise TemplateLimitError(f"the template took over {seconds:g} s to render") from None
            raise
        finally:
            with self._lock:
                if outer is None:
                    self._deadlines.pop(ident, None)
                    if ident in self._fired:
                        self._fired.discard(ident)
                        _raise_in(ident, None)  # a timeout not yet delivered must not escape later


def _raise_in(ident: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc else None)


WATCHDOG = _Watchdog()
