"""What ``ishowctl status`` builds and its providers fill in: the JSON and the lines of text.

A provider (the GPU lock in ``status_hardware.py``, the RTF in ``rtf.py``, the
alerts in ``alerts.py``) gets the view, adds its key to ``data`` and its lines
to ``top`` (shown first) or ``sections``; ``status.py`` lists the providers.
"""
from __future__ import annotations



class StatusView:
    def __init__(self, config, reader, now: float, data: dict, latest: list):
        self.config, self.reader, self.now = config, reader, now
        self.data = data
        self.latest = latest                             # store.reader.Latest rows shown
        self.top: list[str] = []                         # prominent lines, shown first
        self.sections: list[tuple[str, list[str]]] = []  # (title, lines), after the readings
