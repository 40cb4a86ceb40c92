"""The backend: is it up (``GET /api/health``), and its process's resident memory.

``backend_up`` comes from a probe of ``/api/health`` with a short timeout at
its own interval (``[backend] health_interval``, 30 s: every probe adds two
lines to the backend's log, and the web UI already polls every 30 s). The
probe runs in a thread of its own, so a hung backend never holds up a tick;
each tick reports the latest answer while it is fresh. Only the very first
tick (``ishowd run --once`` included) waits for its probe. The thread and its
urllib opener stay for the next probe: the tick that finds one due wakes the
thread, which costs a wake-up, where starting a thread cost several.

``backend_rss_bytes``: the resident memory of the process whose executable is
``[backend] binary``, found as ``ishowd/backend/running.py`` says (not by
name). No process: no sample.

On a plain machine (no ``[deployment] root``, no backend log, and the backend
never seen by this process: no answer, no process) a failed probe is no
reading at all: ``backend_up`` stays absent, so ``backend-down`` stays quiet
rather than paging about a service that is not installed here. Once any of
them exists, a failed probe is 0 as everywhere else.
"""
from __future__ import annotations

import threading
import time
import os
from typing import Iterable, Optional

from ..backend.running import RESCAN_SECONDS, BackendProcess, opener, probe
from ..metrics import Sample
from ..specs.backend import BACKEND_RSS, BACKEND_UP
from . import Collector, TickContext, register


@register
class Backend(Collector):
    name = "backend"
    metrics = (BACKEND_UP, BACKEND_RSS)

    def setup(self) -> Optional[str]:
        cfg = self.config.backend
        self.url, self.timeout, self.probe_every = cfg.url, cfg.health_timeout, cfg.health_interval
        self._answer: Optional[tuple[float, float]] = None    # (value, monotonic time of the answer)
        self._probe_started = -1e18
        self._thread: Optional[threading.Thread] = None
        self._due = threading.Event()          # set by the tick that finds a probe due
        self._probing = False                  # a probe asked for has not answered yet
        self._closed = False
        self._opener = None
        self.process = BackendProcess(self.config)
        self.seen = False          # answered ok, or its process was found, since ishowd started
        self._looked_at = -RESCAN_SECONDS
        return None

    def deployment_here(self) -> bool:
        """A backend is expected on this host: seen, or its deployment or one of its logs exists
        (looked for as often as the backend's process is: a plain machine pays no stat a tick)."""
        now = time.monotonic()
        if not self.seen and now - self._looked_at >= RESCAN_SECONDS:
            self._looked_at = now
            cfg = self.config
            self.seen = os.path.isdir(cfg.deployment.root) or any(os.path.exists(p) for p in cfg.rtf.logs)
        return self.seen

    # --- backend_up -------------------------------------------------------------------

    def _probe_now(self) -> None:
        if self._opener is None:
            self._opener = opener()
        self._answer = (probe(self.url, self.timeout, self._opener), time.monotonic())

    def _prober(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            if self._closed:
                return
            try:
                self._probe_now()
            finally:
                self._probing = False

    def up(self) -> Optional[float]:
        now = time.monotonic()
        if self._answer is None and self._thread is None:
            self._probe_started = now
            self._probe_now()                                 # the first tick waits for its answer
        elif now - self._probe_started >= self.probe_every and not self._probing:
            self._probe_started = now
            self._probing = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._prober, name="backend-health", daemon=True)
                self._thread.start()
            self._due.set()
        if self._answer is None or now - self._answer[1] > 2 * self.probe_every + self.timeout:
            return None                                       # no fresh answer: absent, not invented
        return self._answer[0]

    def close(self) -> None:
        self._closed = True
        self._due.set()

    def collect(self, ctx: TickContext) -> Iterable[Sample]:
        out = []
        up = self.up()
        rss = self.process.rss(ctx.now)
        if up == 1.0 or rss is not None:
            self.seen = True
        if up is not None and (up == 1.0 or self.deployment_here()):
            out.append(Sample(BACKEND_UP, up))
        if rss is not None:
            out.append(Sample(BACKEND_RSS, rss))
        return out
