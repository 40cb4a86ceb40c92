"""What ``ishowctl status`` builds and its providers fill in: the JSON and the lines of text.

A provider (the GPU lock in ``status_hardware.py``, the RTF in ``rtf.py``, the
alerts in ``alerts.py``) gets the view, adds its key to ``data`` and its lines
to ``top`` (shown first) or ``sections``; ``status.py`` lists the providers.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StatusView:
    config: object
    reader: object
    now: float
    data: dict
    latest: list                                     # store.reader.Latest rows shown
    top: list[str] = field(default_factory=list)     # prominent lines, shown first
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
