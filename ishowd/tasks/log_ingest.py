"""The backend log ingestion task: every new line of each ``[rtf] logs`` file, once.

Its keys and metrics are in ``ishowd/specs/backend.py``; the work is in
``ishowd/backend/ingest.py``.
"""
from __future__ import annotations

from typing import Optional

from . import Task, register


@register
class LogIngest(Task):
    name = "log-ingest"
    order = 10

    def setup(self) -> Optional[str]:
        if not self.config.rtf.logs:
            return "[rtf] logs is empty"
        from ..backend.ingest import Ingestor
        self.ingestor = Ingestor(self.config, self.store)
        return None

    def interval(self) -> Optional[float]:
        return self.config.rtf.interval

    def run(self, now: float) -> None:
        self.ingestor.run(now)
