"""The backend log ingestion task: every new line of each ``[rtf] logs`` file, once.

Its keys and metrics are in ``ishowd/specs/backend.py``; the work is in
``ishowd/backend/ingest.py``.
"""
from __future__ import annotations

from typing import Optional

from ..store.errors import is_storage_failure
from . import Task, register


@register
class LogIngest(Task):
    name = "log-ingest"
    order = 10

    def setup(self) -> Optional[str]:
        if not self.config.rtf.logs:
            return "[rtf] logs is empty"
        from ..backend.ingest import Ingestor
        # a rotation a crash cut short is finished by the daemon at start, before any task is set
        # up: here, at a reload, it would take a rotation the job is making now for one cut short
        self.ingestor = Ingestor(self.config, self.store)
        return None

    def interval(self) -> Optional[float]:
        return self.config.rtf.interval

    def quick(self) -> bool:
        return self.ingestor.quick()

    def run(self, now: float) -> None:
        # A write that fails for the disk's sake (full, I/O errors) is said once by the store, not
        # as a traceback each run; nothing is lost: the positions commit with the records, so the
        # next run reads again from the last commit.
        try:
            self.ingestor.run(now)
        except Exception as exc:
            if not is_storage_failure(exc):
                raise
            self.store.write_failed(self.name, exc)
        else:
            self.store.write_succeeded(self.name)
