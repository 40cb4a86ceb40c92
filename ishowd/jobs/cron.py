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


def _expand(field: str, index: int, low: int, high: int) -> set[int]:
    out: set[int] = set()
    for item in field.split(","):
        m = _ITEM.match(item)
        span, step = m.group(1), int(m.group(2) or 1)
        if span == "*":
            start, end = low, high
        else:
            ends = [_value(e, index, low, high) for e in span.split("-")]
            start, end = ends[0], ends[-1]
            if m.group(2) and len(ends) == 1:  # "5/15": from 5 to the end, every 15
                end = high
        out.update(range(start, end + 1, step))
    return out


class Crontab:
    """Crontab fields with cron's own meaning, in a time zone; fire times as epoch seconds.

    As in Vixie cron: day-of-week 0 and 7 are Sunday, and when both day
    fields are restricted a day matches either. (APScheduler's cron trigger
    means 0 as Monday and requires both, and fires twice when the clock falls
    back; so the fire times are computed here.) Across daylight saving time a
    local time the clock skips runs once, at the moment it maps to after the
    jump (02:30 on the spring-forward day is 03:30), and a local time the clock
    passes twice runs once, the first time.
    """

    def __init__(self, text: str):
        problem = crontab_problem(text)
        if problem:
            raise ValueError(problem)
        fields = text.lower().split()
        self.text = " ".join(fields)
        sets = [_expand(f, i, lo, hi) for i, (f, (_, lo, hi)) in enumerate(zip(fields, _FIELDS))]
        self.minutes, self.hours = sorted(sets[0]), sorted(sets[1])
        self.days, self.months = sets[2], sets[3]
        self.weekdays = {d % 7 for d in sets[4]}
        self.any_day, self.any_weekday = fields[2] == "*", fields[4] == "*"

    def day_matches(self, day) -> bool:
        if day.month not in self.months:
            return False
        by_date, by_weekday = day.day in self.days, day.isoweekday() % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday

    def _instants(self, day, tz):
        from datetime import datetime
        for h in self.hours:
            for m in self.minutes:
                # fold=0: an ambiguous time is its first occurrence; a skipped one maps past the gap
                yield datetime(day.year, day.month, day.day, h, m, tzinfo=tz, fold=0).timestamp()

    def next_after(self, t: float, tz) -> float:
        """The first fire time strictly after ``t``."""
        from datetime import datetime, timedelta
        day = datetime.fromtimestamp(t, tz).date() - timedelta(days=1)  # a skipped time may map forward
        for _ in range(5 * 366 + 2):  # "0 0 29 2 *" comes round within five years
            if self.day_matches(day):
                later = [i for i in self._instants(day, tz) if i > t]
                if later:
                    return min(later)
            day += timedelta(days=1)
        raise ValueError(f"{self.text!r} never fires")

    def last_at_or_before(self, t: float, tz) -> float | None:
        """The latest fire time at or before ``t`` (within five years), or None."""
        from datetime import datetime, timedelta
        day = datetime.fromtimestamp(t, tz).date() + timedelta(days=1)
        for _ in range(5 * 366 + 2):
            if self.day_matches(day):
                earlier = [i for i in self._instants(day, tz) if i <= t]
                if earlier:
                    return max(earlier)
            day -= timedelta(days=1)
        return None
