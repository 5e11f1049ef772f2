"""Bounds on what one template render may cost: the size of any value it builds, the size of its
output, and its time (README, configuration: TEMPLATE_MAX_OUTPUT, TEMPLATE_RENDER_SECONDS).

Sizes are checked before an operation that could build a huge value (`'a' * 30000000`,
`'x' | center(10**9)`, `'%0999999999d' | format(1)`, `'{:>999999999}'.format(1)`, `s.replace('', s)`,
`sep.join(items)`) and on every result. A value's size is the text it would print as: a list of a
million references to one long string is as big as the million copies `{{ list }}` would print, so
it is refused where it is made. Format strings are read before they run: a width or precision above
the limit is refused, and so is the output their arguments could fill; `str.format` goes through a
formatter that checks every field's spec, after nested fields are filled in, and the running total. Time is bounded by one watchdog
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
from itertools import islice
from typing import Any

from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.sandbox import SandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter, SecurityError
from markupsafe import Markup


class TemplateLimitError(SecurityError):
    """A template went past a size or time limit."""


_PERCENT = re.compile(r"%(\([^)]*\))?[-+ #0]*(\d+|\*)?(?:\.(\d+|\*))?")
_NUMBERS = re.compile(r"\d+")
_ITEM = 4  # what a container adds per item when printed: quotes, a comma, a space
_CONTAINERS = (list, tuple, set, frozenset, dict)


def _size(value: Any, seen: dict[int, int] | None = None) -> int:
    """The characters `value` would print as, roughly: strings by length, containers by the sum of
    their items (each shared item counted every time it appears, as printing would repeat it)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1  # decimal digits, at least
    if not isinstance(value, _CONTAINERS):
        return 0
    seen = {} if seen is None else seen
    known = seen.get(id(value))
    if known is not None:
        return known
    seen[id(value)] = 0  # a container holding itself prints as [...]
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    total = len(value) * _ITEM + sum(_size(item, seen) for item in items)
    seen[id(value)] = total
    return total


def check_args(limit: int, args: Iterable[Any]) -> None:
    """An int argument above the limit (a width, a repeat count) could build a huge value."""
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > limit:
            raise TemplateLimitError(f"a number above {limit:,} cannot be used here")


def check_result(limit: int, value: Any) -> Any:
    if _size(value) > limit:
        raise _too_big(limit)
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
        check_percent(limit, left, right)


def _too_big(limit: int) -> TemplateLimitError:
    return TemplateLimitError(f"a value of over {limit:,} characters or items")


def check_percent(limit: int, fmt: str, values: Any) -> None:
    """`fmt % values` (and the `format` filter): refused before it runs if a width or precision
    is above the limit, or if its fields could be filled with more than the limit."""
    fields = _PERCENT.findall(fmt)
    numbers = [int(n) for _, width, precision in fields for n in (width, precision) if n.isdigit()]
    check_args(limit, numbers)
    args = values if isinstance(values, tuple) else (values,)
    if any(width == "*" or precision == "*" for _, width, precision in fields):
        check_args(limit, args)
    if isinstance(values, dict):  # `%(name)s` may name the same value many times
        biggest = max((_size(v) for v in values.values()), default=0)
        filled = len(fields) * biggest
    else:
        filled = sum(_size(v) for v in args)
    if len(fmt) + filled + sum(numbers) > limit:
        raise _too_big(limit)


def check_format_spec(limit: int, spec: str) -> None:
    """A `str.format` field's spec, nested fields already filled in: no width above the limit."""
    check_args(limit, [int(n) for n in _NUMBERS.findall(spec)])


def check_str_method(limit: int, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The str methods whose result can be far larger than their inputs, estimated before running."""
    text, name = getattr(method, "__self__", None), getattr(method, "__name__", "")
    if not isinstance(text, str):
        return
    if name == "replace":
        _check_replace(limit, text, *args, **kwargs)
    elif name == "join" and args:
        _check_join(limit, text, args[0])
    elif name == "expandtabs":
        tabsize = (args or (kwargs.get("tabsize", 8),))[0]
        if isinstance(tabsize, int) and len(text) + text.count("\t") * tabsize > limit:
            raise _too_big(limit)
    elif name == "translate" and args and isinstance(args[0], dict):
        biggest = max((_size(v) for v in args[0].values()), default=1)
        if len(text) * biggest > limit:
            raise _too_big(limit)


def _check_replace(limit: int, text: Any, old: Any = "", new: Any = "", count: Any = -1) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    times = len(text) + 1 if old == "" else text.count(old)
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    if len(text) + times * max(0, len(new) - len(old)) > limit:
        raise _too_big(limit)


def sized(items: Any) -> Any:
    """What `join` is given, as a list when it is a generator or a range (Jinja's are bounded by
    the sandbox's MAX_RANGE), so its size can be read before the join runs."""
    return items if isinstance(items, (str, *_CONTAINERS)) or not hasattr(items, "__iter__") else list(items)


def _check_join(limit: int, separator: Any, items: Any) -> None:
    if isinstance(items, _CONTAINERS) and _size(items) + len(items) * len(str(separator)) > limit:
        raise _too_big(limit)


def _check_lines(limit: int, text: Any, per_line: Any, lines: int | None = None) -> None:
    """indent and wordwrap: what they add to each line."""
    text = str(text)
    lines = text.count("\n") + 1 if lines is None else lines
    if len(text) + lines * _size(str(per_line)) > limit:
        raise _too_big(limit)


def check_filter(limit: int, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The built-in filters whose result can be far larger than their inputs (args: as the filter
    function receives them, after any context or environment)."""
    if name == "format" and args:
        check_percent(limit, str(args[0]), kwargs or tuple(args[1:]))
    elif name == "replace" and len(args) >= 3:
        _check_replace(limit, *args[:4])
    elif name == "join" and args:
        _check_join(limit, args[1] if len(args) > 1 else kwargs.get("d", ""), args[0])
    elif name == "indent" and args:
        _check_lines(limit, args[0], args[1] if len(args) > 1 else kwargs.get("width", 4))
    elif name == "wordwrap" and args:
        width = args[1] if len(args) > 1 else kwargs.get("width", 79)
        wrap = args[4] if len(args) > 4 else kwargs.get("wrapstring") or "\n"
        width = width if isinstance(width, int) and width > 0 else 1
        _check_lines(limit, args[0], wrap, len(str(args[0])) // width + str(args[0]).count("\n") + 1)


def guarded_filter(limit: Callable[[], int], name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes = hasattr(func, "jinja_pass_arg")  # the first argument is a context or environment

    @functools.wraps(func)  # keeps jinja's pass_context/pass_environment marker
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if name == "join" and len(args) > int(passes):
            first = int(passes)
            args = (*args[:first], sized(args[first]), *args[first + 1 :])
        check_args(limit(), list(args[1:]) + list(kwargs.values()))
        check_filter(limit(), name, tuple(args[1:] if passes else args), kwargs)
        return check_result(limit(), func(*args, **kwargs))

    return wrapped


class _BoundedFormatter(SandboxedFormatter):
    """The sandbox's formatter, checking each field's spec before the field is formatted and the
    output's running size after."""

    def __init__(self, env: SandboxedEnvironment, limit: int, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self.limit = limit
        self.total = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        check_format_spec(self.limit, format_spec)
        text = super().format_field(value, format_spec)
        self.total += len(text)
        if self.total > self.limit:
            raise _too_big(self.limit)
        return text


class _BoundedEscapeFormatter(_BoundedFormatter, SandboxedEscapeFormatter):
    pass


def bounded_str_format(env: SandboxedEnvironment, method: Any, limit: int) -> Callable[..., str]:
    """`str.format` / `str.format_map` of a template's string, as the sandbox runs them (fields
    looked up through the sandbox), bounded like every other value."""
    text: str = method.__self__
    is_map = method.__name__ == "format_map"

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        if is_map:
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            mapping: Any = args[0]
            args, kwargs = (), mapping
        formatter: _BoundedFormatter
        if isinstance(text, Markup):
            formatter = _BoundedEscapeFormatter(env, limit, escape=text.escape)
        else:
            formatter = _BoundedFormatter(env, limit)
        return type(text)(check_result(limit, formatter.vformat(text, args, kwargs)))

    return wrapper


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with each `a ~ b` checked like the other operators' results (the
    sandbox intercepts `+`, `*`, `%`, but not `~`)."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.checked_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


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

    def deadline(self, seconds: float) -> _Deadline:
        """`with WATCHDOG.deadline(seconds):` bounds the time of what runs inside, in this thread (a
        nested deadline keeps the outer one's)."""
        return _Deadline(self, seconds)

    def _enter(self, ident: int, seconds: float) -> float | None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="template-watchdog", daemon=True)
                self._thread.start()
            outer = self._deadlines.get(ident)
            self._deadlines[ident] = time.monotonic() + seconds if outer is None else outer
        return outer

    def _exit(self, ident: int, outer: float | None, limit_error: bool) -> bool:
        """Leave a deadline; True when `limit_error` was this deadline's timeout."""
        with self._lock:
            timed_out = limit_error and outer is None and ident in self._fired
            if outer is None:
                self._deadlines.pop(ident, None)
                if ident in self._fired:
                    self._fired.discard(ident)
                    _raise_in(ident, None)  # a timeout not yet delivered must not escape later
        return timed_out


class _Deadline:
    """One render's deadline: a plain context manager (a generator-based one costs several times
    as much, once per template render on the send path)."""

    __slots__ = ("ident", "outer", "seconds", "watchdog")

    def __init__(self, watchdog: _Watchdog, seconds: float) -> None:
        self.watchdog, self.seconds = watchdog, seconds

    def __enter__(self) -> None:
        self.ident = threading.get_ident()
        self.outer = self.watchdog._enter(self.ident, self.seconds)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        limit_error = kind is not None and issubclass(kind, TemplateLimitError)
        if self.watchdog._exit(self.ident, self.outer, limit_error):
            raise TemplateLimitError(f"the template took over {self.seconds:g} s to render") from None


def _raise_in(ident: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc else None)


WATCHDOG = _Watchdog()
