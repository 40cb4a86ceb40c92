"""Running a child command: argv only, in its own session and process group, bounded.

One runner for everything ishowd starts (alert hooks, ``nvpmodel -q``, the
maintenance jobs, the torch checks in the service's interpreter):

- argv, never a shell: text from the backend log can never become a command;
- a new session, so the command and everything it spawns form one process
  group; at the timeout the group gets SIGTERM, and SIGKILL after
  ``kill_grace``. Processes left behind after it exits are ended the same way
  (a grandchild that keeps the output pipe open counts as still running);
- at most ``OUTPUT_BYTES`` of its output (or the caller's ``max_bytes``) are
  kept in memory, the first ``max_lines`` lines of them returned; the rest is
  drained and dropped;
- a ``Cancel`` set by the daemon as it stops ends the group the same way at
  once (status ``stopped``), so shutdown never waits out a command's timeout.
"""
from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger("ishowd.process")

OUTPUT_BYTES = 8192


@dataclass
class RunResult:
    status: str                   # ok | failed | timeout | error | dropped | stopped
    exit_code: Optional[int]
    duration: float
    output: str
    started: float = 0.0          # wall clock


class Cancel:
    """Set once, seen at once by every ``run_command`` given it: a pipe that is never read, so
    once written it wakes every select() waiting on it (an Event would need polling)."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            os.write(self._w, b"x")

    def is_set(self) -> bool:
        return self._set

    def fileno(self) -> int:
        return self._r

    def close(self) -> None:
        for fd in (self._r, self._w):
            os.close(fd)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member changed its uid: still there
        return True
    return True


def _end_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM the process group, SIGKILL what is left after ``grace``; reap the leader."""
    pgid = proc.pid
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        proc.poll()
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()
        if not _group_alive(pgid):
            break
        time.sleep(0.02)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process in uninterruptible sleep
        log.warning("pid %d did not die after SIGKILL", pgid)


def run_command(argv, stdin: bytes, env: dict | None, timeout: float, *, kill_grace: float = 2.0,
                max_lines: int = 20, stderr: bool = True, cwd: str = "/",
                cancel: Optional[Cancel] = None, max_bytes: int = OUTPUT_BYTES) -> RunResult:
    """Run ``argv`` to completion or ``timeout``; never raises for the command's faults.

    ``stdin`` is written to it (then closed); its stdout and, with ``stderr=True``, its stderr
    are kept up to ``max_bytes`` and ``max_lines`` lines (the rest is read and dropped, so
    it never blocks on a full pipe). ``env`` None: this process's environment. Once
    ``cancel`` is set the group is ended as at a timeout and the status is ``stopped``.
    """
    started_wall = time.time()
    start = time.monotonic()
    deadline = start + timeout
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT if stderr else subprocess.DEVNULL,
                                start_new_session=True, env=env, close_fds=True, cwd=cwd)
    except (OSError, ValueError) as exc:
        return RunResult("error", None, time.monotonic() - start, f"cannot start {argv[0]}: {exc}",
                         started_wall)
    if cancel is not None and cancel.is_set():
        _end_group(proc, kill_grace)
        return RunResult("stopped", None, time.monotonic() - start, "not run: ishowd is stopping", started_wall)
    kept = bytearray()
    timed_out = stopped = False
    sel = selectors.DefaultSelector()
    try:
        out_fd = proc.stdout.fileno()
        os.set_blocking(out_fd, False)
        sel.register(out_fd, selectors.EVENT_READ)
        pending = memoryview(stdin)
        in_fd = proc.stdin.fileno()
        if pending:
            os.set_blocking(in_fd, False)
            sel.register(in_fd, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        if cancel is not None:
            sel.register(cancel.fileno(), selectors.EVENT_READ)
        while out_fd in sel.get_map() or in_fd in sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(remaining):
                if cancel is not None and key.fd == cancel.fileno():
                    stopped = True
                elif key.fd == in_fd:
                    try:
                        pending = pending[os.write(in_fd, pending[:65536]):]
                    except BlockingIOError:
                        continue
                    except OSError:  # it closed stdin without reading it all: its business
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(in_fd)
                        proc.stdin.close()
                else:
                    try:
                        chunk = os.read(out_fd, 65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        sel.unregister(out_fd)
                    elif len(kept) < max_bytes:
                        kept += chunk[:max_bytes - len(kept)]
            if stopped:
                break
        # its output is closed: wait for it to exit (in slices only to see a cancel; rare)
        while not (timed_out or stopped):
            remaining = deadline - time.monotonic()
            try:
                proc.wait(max(0.0, remaining if cancel is None else min(remaining, 0.25)))
                break
            except subprocess.TimeoutExpired:
                timed_out = remaining <= 0.25 or cancel is None
                stopped = cancel is not None and cancel.is_set()
        if timed_out or stopped:
            _end_group(proc, kill_grace)
            try:  # what it wrote before it was killed
                while len(kept) < max_bytes:
                    chunk = os.read(out_fd, 65536)
                    if not chunk:
                        break
                    kept += chunk[:max_bytes - len(kept)]
            except OSError:
                pass
        elif _group_alive(proc.pid):
            _end_group(proc, kill_grace)  # it exited but left processes behind
    finally:
        sel.close()
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        if proc.returncode is None:  # pragma: no cover - an exception above
            _end_group(proc, 0)
    duration = time.monotonic() - start
    lines = kept.decode("utf-8", "replace").splitlines()[:max_lines]
    output = "\n".join(lines)
    if timed_out or stopped:
        return RunResult("stopped" if stopped else "timeout", None, duration, output, started_wall)
    rc = proc.returncode
    return RunResult("ok" if rc == 0 else "failed", rc, duration, output, started_wall)
