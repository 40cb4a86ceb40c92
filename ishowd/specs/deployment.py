"""The iShowTTS deployment the maintenance jobs and checks work on, and the jobs' shared keys."""
from __future__ import annotations

from ..config import Key

KEYS = {
    "deployment": {
        "root": Key("path", "/ssd/ishowtts", "the iShowTTS checkout: logs/, config/, data/, third_party/, crates/"),
        "python": Key("path", "/opt/miniforge3/envs/ishowtts/bin/python",
                      "the service's interpreter: torch checks run in it, never in ishowd"),
    },
    "jobs": {
        "timezone": Key("str", "", "the time zone of every job's schedule (an IANA name such as Europe/Berlin; "
                        "empty: the host's local time)"),
    },
}
