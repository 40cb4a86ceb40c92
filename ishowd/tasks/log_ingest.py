"""The backend log ingestion task: every new line of each ``[rtf] logs`` file, once.

Its keys and metrics are in ``ishowd/specs/backend.py``; the work is in
``ishowd/backend/ingest.py``.
"""
from __future__ import annotations

import logging
from typing import Optional

from ..store.errors import is_storage_failure
from . import Task, register

log = logging.getLogger("ishowd.ingest")


@register
class LogIngest(Task):
    name = "log-ingest"
    order = 10

    def setup(self) -> Optional[str]:
        if not self.config.rtf.logs:
            return "[rtf] logs is empty"
        from ..backend.ingest import Ingestor
        from ..jobs.rotate_logs import recover
        said = recover(self.store, self.config)   # a rotation cut short: finished before anything is read
        if said:
            log.warning("%s", said)
        self.ingestor = Ingestor(self.config, self.store)
        return None

    def interval(self) -> Optional[float]:
        return self.config.rtf.interval

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
