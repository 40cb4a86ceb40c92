"""The Jetson power mode from ``nvpmodel -q``: ``power_mode_id{mode}``.

No file holds the mode, so the command is run: as argv (never a shell), with
``[gpu] nvpmodel_timeout``, at start and then again only every
``[gpu] nvpmodel_interval`` (1h); each tick in between gives the cached
reading. The output is ``NV Power Mode: MAXN`` and the mode id on the next
line; the sample's value is the id and its ``mode`` label the name, so an
alert rule such as ``power_mode_id != 0`` catches a board left out of MAXN.
The collector is skipped where the command does not exist.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import time
from typing import Iterable, Optional

from ..metrics import Sample
from ..process import run_command
from ..specs.power import POWER_MODE
from . import Collector, TickContext, register

log = logging.getLogger(__name__)


_MODE_LINE = re.compile(r"NV Power Mode:\s*(.+?)\s*$")
SEARCH_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")


def parse_query(text: str) -> Optional[tuple[str, int]]:
    """(name, id) from ``nvpmodel -q`` output, or None when it holds no mode."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _MODE_LINE.search(line)
        if not m:
            continue
        for nxt in lines[i + 1:]:
            nxt = nxt.strip()
            if nxt:
                return (m.group(1), int(nxt)) if nxt.isdigit() else None
        return None
    return None


def find_command(configured: str) -> Optional[str]:
    if configured:
        return configured if os.access(configured, os.X_OK) else shutil.which(configured)
    path = os.pathsep.join([os.environ.get("PATH", "")] + list(SEARCH_DIRS))
    return shutil.which("nvpmodel", path=path)


@register
class NvpmodelCollector(Collector):
    name = "nvpmodel"
    metrics = (POWER_MODE,)

    def setup(self):
        gpu = self.config.sections.get("gpu", {})
        self._cmd = find_command(gpu.get("nvpmodel_path") or "")
        if self._cmd is None:
            return "no nvpmodel command"
        self._interval = gpu.get("nvpmodel_interval") or 3600.0
        self._timeout = gpu.get("nvpmodel_timeout") or 5.0
        self.runs = 0
        self._mode: Optional[tuple[str, int]] = None
        self._next = 0.0
        self._refresh()
        return None

    def _refresh(self) -> None:
        self._next = time.monotonic() + self._interval
        self.runs += 1
        # stdout alone: a warning on stderr must not land between the mode's two lines
        res = run_command([self._cmd, "-q"], b"", None, self._timeout, kill_grace=1.0, stderr=False)
        if res.status in ("error", "timeout"):
            log.warning("nvpmodel -q failed: %s", res.output or f"no answer within {self._timeout:g}s")
            self._mode = None
            return
        self._mode = parse_query(res.output)
        if self._mode is None:
            log.warning("nvpmodel -q printed no power mode (exit %s): %s", res.exit_code, res.output.strip()[:200])

    @property
    def mode(self) -> Optional[tuple[str, int]]:
        """(name, id) from the last run of ``nvpmodel -q``."""
        return self._mode

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        if time.monotonic() >= self._next:
            self._refresh()
        if self._mode is None:
            return []
        name, mode_id = self._mode
        return [Sample(POWER_MODE, float(mode_id), {"mode": name})]
