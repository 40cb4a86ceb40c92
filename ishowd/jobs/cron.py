"""Crontab fields (``minute hour day-of-month month day-of-week``), checked at config load.

The daemon hands them to APScheduler's ``CronTrigger.from_crontab``; this
check accepts what that accepts of the classic syntax (numbers, ``*``,
ranges, steps, lists, month and weekday names) without importing APScheduler,
so a bad schedule fails at load with the key's name, not later in the daemon.
"""
from __future__ import annotations

import re
from typing import Optional

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12), ("day-of-week", 0, 7))
_NAMES = {3: ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
          4: ("sun", "mon", "tue", "wed", "thu", "fri", "sat")}
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/([0-9]+))?$")


def _value(text: str, index: int, low: int, high: int) -> Optional[int]:
    names = _NAMES.get(index)
    if names and text in names:
        return names.index(text) + (1 if index == 3 else 0)
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None


def crontab_problem(text) -> Optional[str]:
    """None when ``text`` is five valid crontab fields, else what is wrong (for ConfigError)."""
    if not isinstance(text, str):
        return "five crontab fields such as \"0 4 * * 1\""
    fields = text.lower().split()
    if len(fields) != 5:
        return f"five crontab fields (minute hour day-of-month month day-of-week) such as \"0 4 * * 1\", " \
               f"got {len(fields)}"
    for index, (field, (what, low, high)) in enumerate(zip(fields, _FIELDS)):
        for item in field.split(","):
            m = _ITEM.match(item)
            if not m:
                return f"{what} field {field!r}: not a number, range, step or list"
            span, step = m.group(1), m.group(2)
            if step is not None and not 1 <= int(step) <= high:
                return f"{what} field {field!r}: step {step} outside 1-{high}"
            if span == "*":
                continue
            ends = span.split("-")
            values = [_value(e, index, low, high) for e in ends]
            if None in values:
                return f"{what} field {field!r}: {span!r} is not within {low}-{high}"
            if len(values) == 2 and values[0] > values[1]:
                return f"{what} field {field!r}: range {span} runs backwards"
    return None
