"""kill -9 of the installed daemon at random points of its work, and what the store must hold after each.

Shared by ``tests/test_torture_kill.py`` (a few kills per phase) and
``bench/torture.py`` (hundreds, and a table of figures). Each phase runs the
real ``ishowd run`` on the ``orin-jp6-locked`` fixture tree against the
stand-in backend's real log file, kills it (SIGKILL) at a seeded random
moment, checks the store the kill left, restarts it and checks again once it
has caught up. A phase never raises on a broken invariant: it counts it in
its ``Figures`` and describes it in ``problems``, so the bench can print the
figures of a failing run and the tests can assert on them.

What is checked, precisely:

* ``PRAGMA integrity_check`` is ok, on the files exactly as the kill left them.
* Committed data survives: every head row a reader saw committed before the
  kill is there after it, byte for byte (sealing moves rows only of hours
  older than the run's: those are checked sample by sample instead).
* A tick is never half-written: every tick row (a head row holding the host
  collector's ``ishowd_collector_success`` sample) holds the success and
  duration samples of every collector that ticks hold.
* At most the tick in flight is lost. From when a reader polling every few
  milliseconds saw each tick committed (so the int() rounding of tick
  timestamps does not matter): no slot of the 1 s grid is missing between
  the run's first and last stored tick (the last may be seen up to 0.65 s
  late), and of the slots due after the last stored tick and before the kill,
  only one (the tick in flight) may be missing.
* Records, at the kill: only records the writer wrote, none read twice (the
  ``ingest/duplicates`` counter; the primary key would hide a double read),
  and the ``lines/synthesis`` counter equal to the records stored (both are
  committed in the same transaction as the position).
* Records, once the restarted daemon has caught up: exactly the records the
  writer wrote, each once.
* Sealing: the samples of the hours the restarted daemon may seal are exactly
  the ones there before it started, each once (in the head or in a raw chunk,
  never both), and each hour it sealed has 1m and 1h rollups equal to a
  brute-force computation over those samples; the chunks of hours sealed
  before are byte for byte as they were.

The fixture's clock: hours are made to pass between runs with libfaketime
(``FAKETIME=+Ns``, ``FAKETIME_DONT_FAKE_MONOTONIC=1``: the daemon's wall clock
ahead by N seconds, its monotonic clock untouched). Its speed-up mode
(``-f "+0 x60"``) cannot drive a Python 3.11 daemon: threading waits use
``sem_clockwait(CLOCK_MONOTONIC)``, which libfaketime 0.9.10 does not
intercept, so every wait on a sped-up (or offset) monotonic clock hangs or
misfires and the daemon writes no tick at all. With the monotonic clock left
alone, ``time.sleep`` fails with EINVAL under libfaketime; only
``subprocess``'s timed waits (nvpmodel, hooks) use it, so the sealing phase
runs without nvpmodel.

TODO(jobs): a "job run" kill point belongs here: kill -9 while a maintenance
job runs, then its ``job_runs`` record and what the job wrote checked. The
jobs framework (``ishowd/jobs/``) landed while this rig was written.
"""
from __future__ import annotations

import math
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import psutil

from backend_harness import ISHOWD, Harness, stored, truth
from hw_helpers import board_root, toml_text
from standin_backend import StandinBackend

INTERVAL = 1.0               # [sampling] interval of every phase: the smallest the config allows
POLL = 0.005                 # how often the reader looks for newly committed rows
HOUR = 3600
DAY = 86400
FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1", "/usr/local/lib/faketime/libfaketime.so.1")


def libfaketime() -> Optional[str]:
    return next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)


@dataclass
class Figures:
    """What one phase did and found; ``problems`` names each broken invariant with its kill."""
    phase: str
    seed: int
    kills: int = 0
    written: int = 0                # records the writer wrote
    ingested: int = 0               # records in the store at the end
    lost: int = 0                   # written, not in the store after catching up
    doubled: int = 0                # read twice (the duplicates counter), or records never written
    ticks_lost: int = 0             # ticks due before a kill, not stored, beyond the one in flight
    integrity_failures: int = 0
    wall_s: float = 0.0
    outcomes: Counter = field(default_factory=Counter)   # where the kills landed
    problems: list = field(default_factory=list)

    def problem(self, kill: int, what: str) -> None:
        self.problems.append(f"{self.phase} kill {kill} (seed {self.seed}): {what}")


def ro(db: str) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)


def integrity(db: str) -> list[str]:
    if not os.path.exists(db):
        return []
    conn = ro(db)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()
    return [] if rows == ["ok"] else rows


# --- the head, watched while the daemon writes -------------------------------------------------

class HeadWatch:
    """Polls the head for rows as they are committed and notes when each was first seen."""

    def __init__(self, db: str):
        self.db = db
        self.conn: Optional[sqlite3.Connection] = None
        self.rows: dict[int, tuple[int, bytes]] = {}
        self.seen_at: dict[int, float] = {}
        self.after_id = max_head_id(db)           # rows of earlier runs are not this run's

    def poll(self, at: Optional[float] = None) -> None:
        try:
            if self.conn is None:
                if not os.path.exists(self.db):
                    return
                self.conn = ro(self.db)
            last = max(self.rows, default=self.after_id)
            got = self.conn.execute("SELECT id, ts, data FROM head WHERE id > ? ORDER BY id", (last,)).fetchall()
        except sqlite3.OperationalError:          # not created yet (a fresh store)
            return
        when = time.monotonic() if at is None else at
        for rid, ts, data in got:
            self.rows[rid] = (ts, data)
            self.seen_at[rid] = when

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def max_head_id(db: str) -> int:
    if not os.path.exists(db):
        return 0
    conn = ro(db)
    try:
        return conn.execute("SELECT coalesce(max(id), 0) FROM head").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def head_rows(db: str) -> dict[int, tuple[int, bytes]]:
    if not os.path.exists(db):
        return {}
    conn = ro(db)
    try:
        return {rid: (ts, data) for rid, ts, data in conn.execute("SELECT id, ts, data FROM head")}
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def success_series(db: str) -> dict[int, str]:
    """{series id: collector} of the ``ishowd_collector_success`` series."""
    import json
    if not os.path.exists(db):
        return {}
    conn = ro(db)
    try:
        return {sid: json.loads(labels)["collector"] for sid, labels in
                conn.execute("SELECT id, labels FROM series WHERE name = 'ishowd_collector_success'")}
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def duration_series(db: str) -> dict[str, int]:
    import json
    if not os.path.exists(db):
        return {}
    conn = ro(db)
    try:
        return {json.loads(labels)["collector"]: sid for sid, labels in
                conn.execute("SELECT id, labels FROM series WHERE name = 'ishowd_collector_duration_seconds'")}
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


# --- the daemon and its log ----------------------------------------------------------------------

class Rig(Harness):
    """The backend harness on a fixture board, with a writer thread on the stand-in's log."""

    def __init__(self, tmp: Path, *, workers: int = 0, nvpmodel: bool = True, raw_retention: str = ""):
        (tmp / "logs").mkdir(parents=True, exist_ok=True)
        self.backend = StandinBackend(tmp / "logs" / "backend.log")
        self.backend.start(http=False)
        super().__init__(tmp, batch_bytes=1 << 17, extra=toml_text(board_root("orin-jp6-locked"), nvpmodel=nvpmodel),
                         rtf_extra=f"catchup_workers = {workers}\ncatchup_from = {1 << 17}")
        self.env: dict[str, str] = {}
        self.log_read_to = 0          # how much of the daemon's own output the checks have read
        self.started_at = 0.0

    def set_workers(self, workers: int) -> None:
        text = Path(self.config).read_text()
        Path(self.config).write_text(re.sub(r"catchup_workers = \d+", f"catchup_workers = {workers}", text))

    def start(self, *, group: bool = False) -> "Rig":
        assert self.proc is None
        env = {k: v for k, v in os.environ.items() if k != "ISHOWD_CONFIG"}
        env.update(self.env)
        self.proc = subprocess.Popen([ISHOWD, "run", "--config", self.config], stdout=self.out, stderr=self.out,
                                     env=env, start_new_session=group)
        self.started_at = time.monotonic()
        return self

    def kill_group(self) -> None:
        """SIGKILL to the daemon and every process of its group (its migration child, its workers), as
        power loss, the OOM killer's cgroup kill or systemd's final SIGKILL do."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def own_log(self) -> str:
        """What the daemon printed since the last call."""
        self.out.flush()
        with open(self.dir / "daemon.log", "rb") as f:
            f.seek(self.log_read_to)
            text = f.read().decode("utf-8", "replace")
        self.log_read_to += len(text.encode("utf-8", "replace"))
        return text

    def caught_up(self) -> bool:
        """Every record written is stored, and every file followed is read to its end, the one at the
        path included when there is one (a rotation before the daemon's first read of a file is one
        it cannot know of; after a rename the path may stay empty until the backend restarts)."""
        n = len(self.backend.emitted)
        if self.count() != n or self.counter("lines", "synthesis") != n:
            return False
        positions = self.query("SELECT role, path, offset FROM log_positions")
        if os.path.exists(self.backend.log_path) and "current" not in {role for role, _, _ in positions}:
            return False
        try:
            return all(offset == os.path.getsize(path) for _, path, offset in positions)
        except FileNotFoundError:
            return False

    def close(self) -> None:
        super().close()
        self.backend.stop()


class Writer(threading.Thread):
    """Appends synthesis lines to the stand-in's log at a random pace (and rotates it when asked),
    as the backend does while the daemon reads."""

    def __init__(self, backend: StandinBackend, rnd: random.Random, *, rotate: Optional[Callable[[], None]] = None,
                 rotate_after: float = math.inf):
        super().__init__(daemon=True)
        self.backend, self.rnd = backend, rnd
        self.rotate, self.rotate_after = rotate, rotate_after
        self.halt = threading.Event()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            while not self.halt.is_set():
                write_records(self.backend, self.rnd, self.rnd.randint(1, 6))
                if self.rotate is not None and time.monotonic() - started >= self.rotate_after:
                    self.rotate()
                    self.rotate = None
                self.halt.wait(self.rnd.uniform(0.002, 0.03))     # the pace of the workload, not a race
        except BaseException as exc:  # reported by stop(): a writer that died must fail the phase
            self.error = exc

    def stop(self) -> None:
        self.halt.set()
        self.join(30)
        if self.error is not None:
            raise self.error


def write_records(b: StandinBackend, rnd: random.Random, n: int) -> None:
    """``n`` syntheses, API and live chat, texts with raw newlines and multi-byte characters."""
    for _ in range(n):
        if rnd.random() < 0.25:
            b.chat()
        else:
            b.synth(f"torture {len(b.emitted)} " + "字é\n"[rnd.randrange(3)] * rnd.randint(0, 140),
                    voice=rnd.choice(b.voices), rtf=round(rnd.uniform(0.2, 0.4), 3))


# --- the checks -------------------------------------------------------------------------------------

def check_after_kill(rig: Rig, fig: Figures, kill: int, watch: HeadWatch, killed_at: float, *,
                     ticks: bool = True) -> None:
    """The invariants on the store exactly as the kill left it (see the module's docstring)."""
    problems = integrity(rig.db)
    if problems:
        fig.integrity_failures += 1
        fig.problem(kill, f"integrity_check: {problems[:3]}")
    watch.poll(at=killed_at)                    # committed after the last poll, before the kill
    watch.close()
    left = head_rows(rig.db)
    gone = [rid for rid, row in watch.rows.items() if left.get(rid) != row]
    if gone:
        fig.problem(kill, f"{len(gone)} head rows committed before the kill are gone or changed (ids {gone[:5]})")
    tick_ids, half = tick_rows(rig.db, watch.rows)
    for rid, missing in half.items():
        fig.problem(kill, f"tick row {rid} is half-written: no success/duration sample of {missing}")
    if ticks and tick_ids:
        first, last = watch.seen_at[tick_ids[0]], watch.seen_at[tick_ids[-1]]
        # slots between the first and the last stored tick (the last may be seen up to 0.65 s late)
        inside = math.floor((last - first) / INTERVAL + 0.35) + 1 - len(tick_ids)
        # slots due after the last stored tick, before the kill: one may be in flight
        end = math.floor((killed_at - last) / INTERVAL + 0.05) - 1
        if inside > 0 or end > 0:
            fig.ticks_lost += max(inside, 0) + max(end, 0)
            fig.problem(kill, f"{len(tick_ids)} ticks stored: {max(inside, 0)} slots missing between the run's "
                              f"first and last, {max(end, 0)} more due before the kill: lost besides the one in "
                              f"flight")
    written = set(truth(rig.backend.emitted))
    have = stored(rig)
    strangers = [r for r in have if r not in written]
    if strangers:
        fig.doubled += len(strangers)
        fig.problem(kill, f"{len(strangers)} records the writer never wrote, e.g. {strangers[0]}")
    dups = rig.counter("ingest", "duplicates")
    lines = rig.counter("lines", "synthesis")
    if lines != len(have) + dups or dups:
        fig.problem(kill, f"at the kill: {len(have)} records, {dups} read twice, lines/synthesis counter {lines}")
    said = rig.own_log()
    for bad in ("Traceback", "writing the tick failed"):
        if bad in said:
            fig.problem(kill, f"the daemon logged {bad!r}: " + said[said.index(bad):][:400])


def check_caught_up(rig: Rig, fig: Figures, kill: int, timeout: float = 90) -> bool:
    """After a restart: wait until the daemon has read everything, then compare with the writer's truth."""
    began = time.monotonic()
    done = rig.wait_for(rig.caught_up, timeout=timeout, poll=0.02)
    waited = round(time.monotonic() - began, 1)
    fig.outcomes["longest catch-up (s)"] = max(fig.outcomes["longest catch-up (s)"], waited)
    if not done:
        fig.problem(kill, f"not caught up after {timeout:g} s: positions "
                          f"{rig.query('SELECT role, path, offset, size FROM log_positions')}")
    want, have = Counter(truth(rig.backend.emitted)), Counter(stored(rig))
    lost, extra = want - have, have - want
    dups = rig.counter("ingest", "duplicates")
    wrong = bool(lost or extra or dups) or rig.counter("lines", "synthesis") != len(rig.backend.emitted)
    if wrong:
        fig.lost = max(fig.lost, sum(lost.values()))
        fig.doubled = max(fig.doubled, sum(extra.values()) + dups)
        first = min(lost) if lost else None
        fig.problem(kill, f"after catching up: {sum(lost.values())} of {len(want)} records lost (first {first}), "
                          f"{sum(extra.values())} unknown, {dups} read twice, lines/synthesis "
                          f"{rig.counter('lines', 'synthesis')}")
    return done and not wrong


def tick_rows(db: str, rows: dict) -> tuple[list[int], dict[int, list[str]]]:
    """Which of ``rows`` (head id -> (ts, data)) are ticks (they hold the host collector's success
    sample), oldest first, and which of those lack a collector's success or duration sample."""
    success = success_series(db)
    durations = duration_series(db)
    ticks: dict[int, set] = {}
    collectors: set[str] = set()
    for rid in sorted(rows):
        sids = {sid for sid, _ in unpack(rows[rid][1])}
        names = {success[s] for s in sids & success.keys()}
        if "host" in names:
            ticks[rid] = sids
            collectors |= names
    half = {}
    for rid, sids in ticks.items():
        missing = [c for c in sorted(collectors) if not ({s for s, n in success.items() if n == c} & sids)
                   or durations.get(c) not in sids]
        if missing:
            half[rid] = missing
    return list(ticks), half


def unpack(blob: bytes):
    from ishowd.store import codec
    return codec.unpack_tick(blob)


def finish(rig: Rig, fig: Figures, kill: int, *, records: bool = True) -> None:
    """The last start: catch up, check, stop cleanly (SIGTERM, exit 0), check the file once more."""
    watch = HeadWatch(rig.db)
    rig.start()
    if records:
        check_caught_up(rig, fig, kill)
    # SIGTERM before the daemon has set its handlers ends it by the signal: wait for its first tick
    rig.wait_for(lambda: watch.poll() or bool(watch.rows), timeout=60, poll=0.02)
    watch.close()
    try:
        rig.stop()
    except AssertionError:
        fig.problem(kill, "the last start did not stop cleanly on SIGTERM")
    problems = integrity(rig.db)
    if problems:
        fig.integrity_failures += 1
        fig.problem(kill, f"integrity_check after a clean stop: {problems[:3]}")
    fig.written = len(rig.backend.emitted)
    fig.ingested = rig.count()


def run_until(rig: Rig, watch: HeadWatch, fig: Figures, kill: int, due: Callable[[], bool], *,
              group: bool = False, before_kill: Optional[Callable[[], None]] = None, limit: float = 60) -> float:
    """Poll the head until ``due()`` says kill, then SIGKILL the daemon (``group``: its whole process
    group); returns when it was killed."""
    deadline = time.monotonic() + limit
    while not due():
        watch.poll()
        if rig.proc.poll() is not None:
            fig.problem(kill, f"the daemon exited by itself with {rig.proc.returncode} before the kill: "
                              + rig.own_log()[-400:])
            break
        if time.monotonic() > deadline:
            fig.problem(kill, "the kill point was never reached")
            break
        time.sleep(POLL)
    watch.poll()
    if before_kill is not None:
        before_kill()
    killed_at = time.monotonic()
    if rig.proc.poll() is None:
        rig.kill_group() if group else rig.kill9()
    else:
        rig.proc = None
    fig.kills += 1
    return killed_at


def after(seconds: float) -> Callable[[], bool]:
    at = time.monotonic() + seconds
    return lambda: time.monotonic() >= at


def once_then(condition: Callable[[], bool], seconds: float) -> Callable[[], bool]:
    """True from ``seconds`` after ``condition()`` first held."""
    at: list = []

    def due() -> bool:
        if not at and condition():
            at.append(time.monotonic() + seconds)
        return bool(at) and time.monotonic() >= at[0]
    return due


# --- the phases --------------------------------------------------------------------------------------

def phase_ticks(tmp: Path, kills: int, seed: int) -> Figures:
    """kill -9 while it samples: start-up, the first tick, and ticks going on (no log lines)."""
    fig = Figures("ticks", seed)
    rnd = random.Random(f"{seed}-ticks")
    started = time.monotonic()
    rig = Rig(tmp)
    try:
        for k in range(kills):
            watch = HeadWatch(rig.db)
            rig.start()
            if k % 2 == 0:                       # within start-up: migrations check, setup, the first tick
                due = after(rnd.uniform(0.05, 1.5))
            else:                                # while ticking: up to a few ticks after the first
                due = once_then(lambda: bool(watch.rows), rnd.uniform(0.0, 3.0))
            killed_at = run_until(rig, watch, fig, k, due)
            fig.outcomes["before the first tick" if not watch.rows else "while ticking"] += 1
            check_after_kill(rig, fig, k, watch, killed_at)
        finish(rig, fig, kills, records=False)
    finally:
        rig.close()
    fig.wall_s = time.monotonic() - started
    return fig


def phase_ingest(tmp: Path, kills: int, seed: int) -> Figures:
    """kill -9 while it reads the log: with a writer appending, and catching up on a backlog written
    while it was down (every other backlog scanned by two worker processes)."""
    fig = Figures("ingest", seed)
    rnd = random.Random(f"{seed}-ingest")
    started = time.monotonic()
    rig = Rig(tmp)
    try:
        for k in range(kills):
            backlog = k % 2 == 1
            if backlog:
                workers = 2 if k % 4 == 3 else 0
                rig.set_workers(workers)
                before = rig.count()
                write_records(rig.backend, rnd, rnd.randint(1500, 4000))
                watch = HeadWatch(rig.db)
                rig.start()
                target = before + rnd.randint(0, len(rig.backend.emitted) - before)
                children: list = []
                killed_at = run_until(rig, watch, fig, k, lambda: rig.count() >= target,
                                      before_kill=lambda: children.extend(psutil.Process(rig.proc.pid).children(
                                          recursive=True)))
                got = rig.count()
                where = "none read" if got == before else "all read" if got == len(rig.backend.emitted) \
                    else "mid-catch-up"
                fig.outcomes[f"backlog ({'2 workers' if workers else 'serial'}): {where}"] += 1
                if workers:
                    _check_workers_die(fig, k, children)
                check_after_kill(rig, fig, k, watch, killed_at)
            else:
                watch = HeadWatch(rig.db)
                rig.start()
                if not check_caught_up(rig, fig, k):
                    rig.kill9()
                    break
                writer = Writer(rig.backend, rnd)
                writer.start()
                killed_at = run_until(rig, watch, fig, k, after(rnd.uniform(0.1, 2.5)))
                writer.stop()
                fig.outcomes["appending"] += 1
                check_after_kill(rig, fig, k, watch, killed_at)
        finish(rig, fig, kills)
    finally:
        rig.close()
    fig.wall_s = time.monotonic() - started
    return fig


def _check_workers_die(fig: Figures, kill: int, children: list) -> None:
    """Catch-up workers must not outlive the daemon (they watch its pid)."""
    _gone, alive = psutil.wait_procs(children, timeout=30)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    if alive:
        fig.problem(kill, f"{len(alive)} catch-up workers outlived the daemon")


def phase_rotation(tmp: Path, kills: int, seed: int) -> Figures:
    """kill -9 while the writer appends and the log is rotated: rename (the backend writes the old
    file until it restarts into a new one) or copy-then-truncate, at random moments, at most one
    rotation between two reads of the daemon (two unread rotations lose lines by design; see the
    report)."""
    fig = Figures("rotation", seed)
    rnd = random.Random(f"{seed}-rotation")
    started = time.monotonic()
    rig = Rig(tmp)
    b = rig.backend
    logs = Path(b.log_path).parent
    rotations = Counter()
    pending_restart = [False]

    def rename():
        rotations["rename"] += 1
        b.rename_rotate(f"{b.log_path}.{rotations['rename']}")
        pending_restart[0] = True

    def copy_truncate():
        # called from the writer thread, the log's only writer: nothing is written between the copy
        # and the truncation (logrotate's copytruncate cannot promise that; no reader could help it)
        rotations["copytruncate"] += 1
        b.copy_truncate(logs / "archive" / "202612" / f"backend_{rotations['copytruncate']}.log")

    try:
        for k in range(kills):
            if pending_restart[0]:
                b.restart(http=False)            # the backend restarts into the new file
                pending_restart[0] = False
            watch = HeadWatch(rig.db)
            rig.start()
            if not check_caught_up(rig, fig, k):
                rig.kill9()
                break
            kind = ("rename", "copytruncate")[k % 2]
            kill_after = rnd.uniform(0.2, 3.0)
            writer = Writer(b, rnd, rotate=rename if kind == "rename" else copy_truncate,
                            rotate_after=rnd.uniform(0.0, 1.2 * kill_after))   # mostly before the kill
            writer.start()
            killed_at = run_until(rig, watch, fig, k, after(kill_after))
            writer.stop()
            fig.outcomes[f"{kind}, killed {'after' if writer.rotate is None else 'before'} it"] += 1
            check_after_kill(rig, fig, k, watch, killed_at)
        finish(rig, fig, kills)
    finally:
        rig.close()
    fig.outcomes.update({f"{n} rotations": c for n, c in rotations.items()})
    fig.wall_s = time.monotonic() - started
    return fig


# --- sealing ----------------------------------------------------------------------------------------

SEAL_SERIES = 20             # series of the hours written through the store's API before each start
ROUND_STEP = 4 * HOUR        # the fake clock's jump between two starts: the last run's hour becomes sealable
ROUNDS_PER_STORE = 60        # then a new store: its first hours would pass raw retention (14 d)


def seal_value(i: int, t: int) -> float:
    """Series ``i`` at ``t``: readings to the thousandth for even ``i`` (the codec's decimal mode), float
    quotients for odd ones (its XOR mode)."""
    if i % 2 == 0:
        return ((t * 7919 + i * 104729) % 100000) / 1000
    return ((t % 9973) + i) / 7.0


def write_hours(db: str, hours: list[int]) -> None:
    """Whole hours of 1 s ticks of ``SEAL_SERIES`` series into the head, as a daemon sampling through
    them would have left them (one transaction, to be quick)."""
    from ishowd.metrics import Sample, declare
    from ishowd.store.writer import Store

    metrics = [declare(f"torture_seal_{i}_ratio", "ratio", "kill -9 torture: an hour to seal")
               for i in range(SEAL_SERIES)]
    store = Store(db)
    try:
        with store.transaction() as conn:
            for hour in hours:
                for t in range(hour, hour + HOUR):
                    store.write_in(conn, t, [Sample(m, seal_value(i, t)) for i, m in enumerate(metrics)])
    finally:
        store.close()


def samples_before(db: str, until: int, since: int = 0) -> tuple[dict, dict, int]:
    """Every sample stamped in [``since``, ``until``): ``{(series, ts): value}`` (the first value of a
    timestamp in the head, as sealing keeps it), ``{(series, hour): "raw" | "head" | "both"}`` and how
    many samples are both sealed and still in the head."""
    from ishowd.store import codec
    conn = ro(db)
    out: dict = {}
    where: dict = {}
    doubled = 0
    span = {"since": since, "until": until}
    try:
        for sid, start, blob in conn.execute("SELECT series_id, start_ts, data FROM chunks WHERE kind = 'raw' "
                                             "AND start_ts >= :since AND start_ts < :until", span):
            ts, (vals,) = codec.decode(blob)
            where[(sid, start)] = "raw"
            out.update(((sid, t), v) for t, v in zip(ts, vals))
        in_head: dict = {}
        for _rid, ts, data in conn.execute("SELECT id, ts, data FROM head WHERE ts >= :since AND ts < :until "
                                           "ORDER BY id", span):
            for sid, v in codec.unpack_tick(data):
                in_head.setdefault((sid, ts), v)
    finally:
        conn.close()
    for (sid, ts), v in in_head.items():
        key = (sid, ts - ts % HOUR)
        where[key] = "both" if where.get(key, "head") != "head" else "head"
        if (sid, ts) in out:
            doubled += 1
        else:
            out[(sid, ts)] = v
    return out, where, doubled


def unsealed_since(db: str, until: int) -> int:
    """The first hour the head still holds before ``until`` (``until`` when none): every older one is sealed."""
    conn = ro(db)
    try:
        first = conn.execute("SELECT min(ts) FROM head WHERE ts < ?", (until,)).fetchone()[0]
    finally:
        conn.close()
    return until if first is None else first - first % HOUR


def sealed_digest(db: str, since: int) -> str:
    """A digest of the chunks no seal from ``since`` on may touch: raw and 1m chunks of earlier hours,
    1h chunks of earlier days."""
    import hashlib
    digest = hashlib.sha256()
    conn = ro(db)
    try:
        for row in conn.execute("SELECT kind, start_ts, series_id, count, data FROM chunks WHERE (kind != '1h' "
                                "AND start_ts < ?) OR (kind = '1h' AND start_ts < ?) ORDER BY kind, start_ts, "
                                "series_id", (since, since - since % DAY)):
            digest.update(repr(row).encode())
    finally:
        conn.close()
    return digest.hexdigest()


def brute(values: list[float]) -> list:
    return [len(values), min(values), max(values), math.fsum(values)]


def check_rollups(db: str, fig: Figures, kill: int, truth_samples: dict, sealed: set) -> None:
    """The 1m and 1h rollups of each (series, hour) in ``sealed`` against the samples it had before."""
    from ishowd.store import codec
    by_key: dict = {}
    for (sid, t), v in truth_samples.items():
        if (sid, t - t % HOUR) in sealed:
            by_key.setdefault((sid, t - t % HOUR), []).append((t, v))
    conn = ro(db)
    try:
        for (sid, hour), pairs in sorted(by_key.items()):
            pairs.sort()
            minutes: dict = {}
            for t, v in pairs:
                minutes.setdefault(t - t % 60, []).append(v)
            want_1m = {m: brute(vs) for m, vs in minutes.items()}
            row = conn.execute("SELECT data FROM chunks WHERE kind = '1m' AND series_id = ? AND start_ts = ?",
                               (sid, hour)).fetchone()
            got_1m = {} if row is None else _rollup_rows(codec.decode(row[0]))
            if got_1m != want_1m:
                bad = [(m, got_1m.get(m), want_1m.get(m)) for m in sorted(got_1m.keys() | want_1m.keys())
                       if got_1m.get(m) != want_1m.get(m)][:2]
                fig.problem(kill, f"series {sid} hour {hour}: 1m rollups differ from the samples (minute, stored, "
                                  f"brute force): {bad}")
            row = conn.execute("SELECT data FROM chunks WHERE kind = '1h' AND series_id = ? AND start_ts = ?",
                               (sid, hour - hour % DAY)).fetchone()
            got_1h = None if row is None else _rollup_rows(codec.decode(row[0])).get(hour)
            want_1h = brute([v for _, v in pairs])
            if got_1h != want_1h:
                fig.problem(kill, f"series {sid} hour {hour}: 1h rollup {got_1h} != {want_1h} from the samples")
    finally:
        conn.close()


def _rollup_rows(decoded) -> dict:
    ts, cols = decoded
    return {t: [int(cols[0][i]), cols[1][i], cols[2][i], cols[3][i]] for i, t in enumerate(ts)}


def phase_seal(tmp: Path, kills: int, seed: int, lib: str) -> Figures:
    """kill -9 while the daemon seals hours. Before each start the fake clock jumps ``ROUND_STEP``
    ahead, so the hour the previous run ticked in and two hours written meanwhile through the store's
    API (``write_hours``) are all due for sealing at the first tick. The first run is left to finish
    sealing, which times an hour's seal; later kills come at a random moment within that time
    per hour pending, from the run's first tick (written just before sealing starts)."""
    fig = Figures("seal", seed)
    rnd = random.Random(f"{seed}-seal")
    started = time.monotonic()
    seal_s: Optional[float] = None
    timings: list = []
    rig: Optional[Rig] = None
    base = (int(time.time()) // HOUR + 6) * HOUR
    try:
        for k in range(kills):
            if k % ROUNDS_PER_STORE == 0:
                if rig is not None:
                    finish(rig, fig, k, records=False)
                    rig.close()
                rig = Rig(tmp / f"store{k // ROUNDS_PER_STORE}", nvpmodel=False)
                base += ROUNDS_PER_STORE * ROUND_STEP
            hour = base + (k % ROUNDS_PER_STORE) * ROUND_STEP
            cutoff = hour - HOUR
            write_hours(rig.db, [hour - 3 * HOUR, hour - 2 * HOUR])
            # the samples of the hours this run may seal, sample by sample; the older ones by a digest
            since = unsealed_since(rig.db, cutoff)
            before, where_before, _ = samples_before(rig.db, cutoff, since)
            digest = sealed_digest(rig.db, since)
            pending = {h for (_sid, h), w in where_before.items() if w != "raw"}
            rig.env = {"LD_PRELOAD": lib, "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                       "FAKETIME": f"+{hour + 1200 - int(time.time())}"}
            watch = HeadWatch(rig.db)
            rig.start()

            def first_tick() -> bool:            # written just before maintain() starts sealing
                return any(ts >= hour for ts, _ in watch.rows.values())

            if seal_s is None:
                began: list = []

                def sealed_all() -> bool:
                    if not began and first_tick():
                        began.append(time.monotonic())
                    if not began:
                        return False
                    conn = ro(rig.db)
                    try:
                        done = conn.execute("SELECT coalesce(min(ts), ?) FROM head", (hour,)).fetchone()[0] >= cutoff
                    finally:
                        conn.close()
                    if done:
                        timings.append(time.monotonic() - began[0])
                    return done
                killed_at = run_until(rig, watch, fig, k, sealed_all)
                seal_s = (timings[0] if timings else 1.0) / len(pending)
            else:
                # within the time the pending hours took the first run: hours a kill leaves unsealed stay
                # pending, so a window of fixed length would let them pile up
                window = seal_s * len(pending)
                killed_at = run_until(rig, watch, fig, k, once_then(first_tick, rnd.uniform(0, window)))
            check_after_kill(rig, fig, k, watch, killed_at, ticks=False)
            now, where, doubled = samples_before(rig.db, cutoff, since)
            if sealed_digest(rig.db, since) != digest:
                fig.problem(k, f"chunks sealed before {since} (hours no seal of this run may touch) changed")
            if doubled:
                fig.problem(k, f"{doubled} samples both sealed and still in the head")
            if now != before:
                lost = before.keys() - now.keys()
                changed = [key for key in before.keys() & now.keys() if before[key] != now[key]]
                fig.problem(k, f"sealing changed the samples: {len(lost)} lost, {len(now.keys() - before.keys())} "
                               f"new, {len(changed)} changed (e.g. {sorted(lost)[:2] or changed[:2]})")
            half = sorted({h for (_sid, h), w in where.items() if w == "both"})
            if half:
                fig.problem(k, f"hours {half} are partly sealed and partly in the head")
            sealed_now = {key for key, w in where.items() if w == "raw" and where_before.get(key) != "raw"}
            check_rollups(rig.db, fig, k, before, sealed_now)
            done = {h for h in pending if all(w == "raw" for (sid, hh), w in where.items() if hh == h)}
            fig.outcomes["before sealing" if not done else "after sealing" if done == pending
                         else "between two hours' seals"] += 1
            fig.outcomes["hours sealed"] += len(done)
        if rig is not None:
            finish(rig, fig, kills, records=False)
    finally:
        if rig is not None:
            rig.close()
    fig.outcomes["seal of an hour, first run (s)"] = round(seal_s or 0, 2)
    fig.wall_s = time.monotonic() - started
    return fig


# --- the first start -------------------------------------------------------------------------------------

def schema_state(db: str) -> str:
    if not os.path.exists(db) or os.path.getsize(db) == 0:
        return "no store yet"
    try:
        conn = ro(db)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = conn.execute("SELECT version_num FROM alembic_version").fetchone() \
                if "alembic_version" in tables else None
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"unreadable ({exc})"
    if not tables:
        return "empty database"
    return "schema complete" if version is not None else "schema partly created"


def start_again(rig: Rig) -> tuple[int, str]:
    r = subprocess.run([ISHOWD, "run", "--once", "--config", rig.config], capture_output=True, text=True, timeout=120)
    return r.returncode, (r.stderr.strip().splitlines() or [""])[-1]


def phase_first_start(tmp: Path, kills: int, seed: int) -> Figures:
    """kill -9 of the daemon's process group (it and the child that creates the schema) at a random
    moment of its very first start, each time on a new store; the next start must take the store."""
    fig = Figures("first-start", seed)
    rnd = random.Random(f"{seed}-first-start")
    started = time.monotonic()
    for k in range(kills):
        rig = Rig(tmp / f"start{k}")
        try:
            watch = HeadWatch(rig.db)
            rig.start(group=True)
            killed_at = run_until(rig, watch, fig, k, after(rnd.uniform(0.05, 1.5)), group=True)
            state = schema_state(rig.db)
            fig.outcomes[state] += 1
            check_after_kill(rig, fig, k, watch, killed_at)
            rc, said = start_again(rig)
            if rc != 0:
                fig.problem(k, f"killed with the {state}: the next start exits {rc}: {said}")
                fig.outcomes["next start refused the store"] += 1
        finally:
            rig.close()
    fig.wall_s = time.monotonic() - started
    return fig


def kill_mid_schema(tmp: Path, attempts: int = 20) -> Optional[tuple[int, str]]:
    """Kill the first start's process group the moment the schema is partly there; None when no kill
    landed there in ``attempts`` tries, else how the next start went (exit status, last line)."""
    for k in range(attempts):
        rig = Rig(tmp / f"aim{k}")
        try:
            rig.start(group=True)
            deadline = time.monotonic() + 30
            while rig.proc.poll() is None and time.monotonic() < deadline:
                if schema_state(rig.db) in ("schema partly created", "schema complete"):
                    break
                time.sleep(0.0005)
            if rig.proc.poll() is None:
                rig.kill_group()
            else:
                rig.proc = None
            if schema_state(rig.db) == "schema partly created":
                return start_again(rig)
        finally:
            rig.close()
    return None
