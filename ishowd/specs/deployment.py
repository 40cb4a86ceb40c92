"""The iShowTTS deployment the maintenance jobs and checks work on, and the jobs' shared keys."""
from __future__ import annotations

from typing import Optional

from ..config import Key


def _zone_problem(name: str) -> Optional[str]:
    """What ZoneInfo would refuse when the jobs are scheduled, refused at load instead (zoneinfo is
    imported only for a zone that is set: it costs each ishowctl call 4 ms)."""
    if not name:
        return None
    from zoneinfo import ZoneInfo
    try:
        ZoneInfo(name)
    except (ValueError, LookupError, OSError):     # bad key, no such zone, a directory such as Europe
        return 'an IANA time zone name such as Europe/Berlin ("" for the host\'s local time)'
    return None


KEYS = {
    "deployment": {
        "root": Key("path", "/ssd/ishowtts", "the iShowTTS checkout: logs/, config/, data/, third_party/, crates/"),
        "python": Key("path", "/opt/miniforge3/envs/ishowtts/bin/python",
                      "the service's interpreter: torch checks run in it, never in ishowd"),
    },
    "jobs": {
        "timezone": Key("str", "", "the time zone of every job's schedule (an IANA name such as Europe/Berlin; "
                        "empty: the host's local time)", check=_zone_problem),
    },
}
