"""Hook commands: run off the sampling path, bounded, killed on timeout, retried, recorded.

A hook is an argv (never a shell). Each run:

- gets the alert as one JSON object on stdin and as ``ISHOWD_ALERT_*``
  environment variables (on top of the daemon's own environment);
- starts in a new session, so it and everything it spawns form one process
  group; at its timeout the group gets SIGTERM, and SIGKILL after
  ``[alerts] hook_kill_grace``. Processes it leaves behind after exiting
  are ended the same way (a grandchild that keeps the output pipe open
  counts as the hook still running);
- has the first ``hook_output_lines`` lines of its stdout and stderr kept
  (at most 8 KiB are read into memory; the rest is drained and dropped).

The running itself (argv, process group, timeout, bounded output) is
``ishowd/process.py``'s, shared with ``nvpmodel`` and the maintenance jobs.

At most ``hook_workers`` runs at once, in their own threads: the tick only
queues them. At most ``hook_queue`` wait; beyond that a run is dropped (and
recorded as such). A failed run (non-zero exit, timeout, cannot start) is
retried up to the hook's ``retries`` times, ``hook_retry_delay`` after the
first failure, doubling after each. Every attempt is recorded.

At shutdown, runs in flight and runs due get ``kill_grace`` to finish; then
the groups still running are ended (SIGTERM, SIGKILL after ``kill_grace``)
and recorded as ``stopped``, and what still waits (retries due later) is
recorded as dropped. So stopping takes about twice ``kill_grace`` at most,
whatever the hooks' timeouts.
"""
from __future__ import annotations

import heapq
import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..logbudget import LogBudget
from ..process import Cancel, RunResult, run_command
from .rules import Hook

log = logging.getLogger("ishowd.alerts")

__all__ = ["HookRunner", "RunResult", "alert_env", "run_command"]


def alert_env(payload: dict) -> dict[str, str]:
    """The ``ISHOWD_ALERT_*`` variables for a hook (README, "Hooks")."""
    def text(v) -> str:
        if v is None:
            return ""
        if isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False, sort_keys=True)
        return str(v)
    return {"ISHOWD_ALERT_" + k.upper(): text(v) for k, v in payload.items()}


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    hook: Hook = None  # type: ignore[assignment]
    payload: dict = None  # type: ignore[assignment]
    event_id: int = 0
    attempt: int = 1


class HookRunner:
    """A bounded pool of hook runs with delayed retries. ``record`` is called for every attempt."""

    def __init__(self, record: Callable[[int, Hook, int, RunResult], None], *, workers: int = 2,
                 queue: int = 100, retry_delay: float = 5.0, kill_grace: float = 2.0, output_lines: int = 20):
        self.record = record
        self.workers = workers
        self.queue_limit = queue
        self.retry_delay = retry_delay
        self.kill_grace = kill_grace
        self.output_lines = output_lines
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._closing = False
        self._close_by = 0.0
        self._cancel = Cancel()
        self.said = LogBudget(log, "hook failures and drops")

    def submit(self, hook: Hook, payload: dict, event_id: int) -> bool:
        """Queue a run now; False (and a recorded ``dropped`` run) when the queue is full."""
        with self._cond:
            if self._closing or len(self._heap) >= self.queue_limit:
                full = True
            else:
                full = False
                heapq.heappush(self._heap, _Job(time.monotonic(), next(self._seq), hook, payload, event_id))
                self._start_workers()
                self._cond.notify()
        if full:
            why = "daemon stopping" if self._closing else f"queue full ({self.queue_limit} runs waiting)"
            self.said.log(logging.WARNING, "hook %s for event %d dropped: %s", hook.name, event_id, why)
            self._record(event_id, hook, 1, RunResult("dropped", None, 0.0, why, time.time()))
            return False
        return True

    def _start_workers(self) -> None:
        while len(self._threads) < self.workers:
            t = threading.Thread(target=self._work, name=f"ishowd-hook-{len(self._threads)}", daemon=True)
            self._threads.append(t)
            t.start()

    def _record(self, event_id: int, hook: Hook, attempt: int, result: RunResult) -> None:
        try:
            self.record(event_id, hook, attempt, result)
        except Exception as exc:  # recording must never kill a worker
            log.error("recording a run of hook %s failed: %s", hook.name, exc)

    def _next(self) -> Optional[_Job]:
        with self._cond:
            while True:
                now = time.monotonic()
                if self._closing and now >= self._close_by:
                    return None
                if self._heap and self._heap[0].due <= now:
                    self._busy += 1
                    return heapq.heappop(self._heap)
                if self._closing and (not self._heap or self._heap[0].due > self._close_by):
                    return None
                wait = self._heap[0].due - now if self._heap else None
                if self._closing:
                    wait = min(wait if wait is not None else self._close_by - now, self._close_by - now)
                self._cond.wait(wait)

    def _work(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _run(self, job: _Job) -> None:
        hook = job.hook
        data = json.dumps(job.payload, ensure_ascii=False).encode() + b"\n"
        env = dict(os.environ)
        env.update(alert_env(job.payload))
        result = run_command(hook.command, data, env, hook.timeout, kill_grace=self.kill_grace,
                             max_lines=self.output_lines, cancel=self._cancel)
        self._record(job.event_id, hook, job.attempt, result)
        if result.status == "ok":
            return
        retry = job.attempt <= hook.retries and result.status != "stopped"  # stopped by us: not its failure
        self.said.log(logging.WARNING, "hook %s (%s %s, attempt %d): %s%s", hook.name, job.payload.get("rule"),
                      job.payload.get("state"), job.attempt,
                      result.status + (f" with exit status {result.exit_code}" if result.exit_code is not None
                                       else ""),
                      "; retrying" if retry else "; giving up")
        if retry:
            delay = self.retry_delay * 2 ** (job.attempt - 1)
            with self._cond:
                heapq.heappush(self._heap, _Job(time.monotonic() + delay, next(self._seq), hook,
                                                job.payload, job.event_id, job.attempt + 1))
                self._cond.notify()

    def idle(self) -> bool:
        with self._cond:
            return not self._heap and self._busy == 0

    def wait_idle(self) -> None:
        """Until no run is in flight or due now (each is bounded by its timeout); retries due
        later are left to ``close``, which records them as dropped."""
        with self._cond:
            while self._busy or (self._heap and self._heap[0].due <= time.monotonic()):
                self._cond.wait(0.5 if self._heap else None)

    def close(self, wait: Optional[float] = None) -> None:
        """Stop within ``wait`` seconds (default ``kill_grace``) and the kill grace: runs in flight,
        and runs due by then, may finish until ``wait`` is up; then the groups still running are
        ended and recorded as stopped, and what still waits is recorded as dropped."""
        with self._cond:
            self._closing = True
            self._close_by = time.monotonic() + (self.kill_grace if wait is None else wait)
            self._cond.notify_all()
        for t in self._threads:
            t.join(max(0.0, self._close_by - time.monotonic()))
        if any(t.is_alive() for t in self._threads):
            log.warning("ending the hook runs still in flight at stop (SIGTERM, then SIGKILL after %gs)",
                        self.kill_grace)
            self._cancel.set()
        for t in self._threads:
            t.join()  # bounded: a cancelled run ends its group within kill_grace (and a few seconds' wait)
        self._cancel.close()
        with self._cond:
            left, self._heap = self._heap, []
        for job in left:
            why = "ishowd stopped before the retry was due" if job.attempt > 1 else "ishowd stopped before it ran"
            self._record(job.event_id, job.hook, job.attempt, RunResult("dropped", None, 0.0, why, time.time()))
