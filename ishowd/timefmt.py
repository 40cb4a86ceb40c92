"""Times for people and programs: ISO 8601 in JSON and CSV, local time in tables."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional


def iso(ts: Optional[float]) -> Optional[str]:
    """ISO 8601 with an offset (UTC), to the second unless it has a fraction; None stays None."""
    if ts is None:
        return None
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    return dt.isoformat(timespec="microseconds" if ts % 1 else "seconds")


def local_time(ts: Optional[float]) -> str:
    """The operator's local time, to the second ("-" for none)."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def to_us(ts: Optional[float]) -> Optional[int]:
    """Epoch seconds as the store's integer microseconds."""
    return None if ts is None else int(round(ts * 1_000_000))
