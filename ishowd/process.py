"""Running a child command: argv only, in its own session and process group, bounded.

One runner for everything ishowd starts (alert hooks, ``nvpmodel -q``, the
maintenance jobs, the torch checks in the service's interpreter):

- argv, never a shell: text from the backend log can never become a command;
- a new session, so the command and everything it spawns form one process
  group; at the timeout the group gets SIGTERM, and SIGKILL after
  ``kill_grace``. Processes left behind after it exits are ended the same way
  (a grandchild that keeps the output pipe open counts as still running);
- at most ``OUTPUT_BYTES`` of its output are kept in memory, the first
  ``max_lines`` lines of them returned; the rest is drained and dropped.
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
    status: str                   # ok | failed | timeout | error | dropped
    exit_code: Optional[int]
    duration: float
    output: str
    started: float = 0.0          # wall clock


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
                max_lines: int = 20, stderr: bool = True, cwd: str = "/") -> RunResult:
    """Run ``argv`` to completion or ``timeout``; never raises for the command's faults.

    ``stdin`` is written to it (then closed); its stdout and, with ``stderr=True``, its stderr
    are kept up to ``OUTPUT_BYTES`` and ``max_lines`` lines (the rest is read and dropped, so
    it never blocks on a full pipe). ``env`` None: this process's environment.
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
    kept = bytearray()
    timed_out = False
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
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(remaining):
                if key.fd == in_fd:
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
                    elif len(kept) < OUTPUT_BYTES:
                        kept += chunk[:OUTPUT_BYTES - len(kept)]
        if not timed_out:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
        if timed_out:
            _end_group(proc, kill_grace)
            try:  # what it wrote before it was killed
                while len(kept) < OUTPUT_BYTES:
                    chunk = os.read(out_fd, 65536)
                    if not chunk:
                        break
                    kept += chunk[:OUTPUT_BYTES - len(kept)]
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
    if timed_out:
        return RunResult("timeout", None, duration, output, started_wall)
    rc = proc.returncode
    return RunResult("ok" if rc == 0 else "failed", rc, duration, output, started_wall)
