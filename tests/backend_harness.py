"""Driving the installed ``ishowd`` against the stand-in backend, and reading the store back."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
ISHOWD = str(BIN / "ishowd")
ISHOWCTL = str(BIN / "ishowctl")


class Harness:
    def __init__(self, tmp: Path, *, backend_url: str = "http://127.0.0.1:9", batch_bytes: int = 1 << 17,
                 extra: str = "", rtf_extra: str = ""):
        self.dir = tmp
        self.log = str(tmp / "logs" / "backend.log")
        (tmp / "logs").mkdir(exist_ok=True)
        self.db = str(tmp / "state" / "ishowd.db")
        self.config = str(tmp / "ishowd.toml")
        Path(self.config).write_text(f"""
[storage]
path = "{self.db}"
[sampling]
interval = "1s"
[rtf]
logs = ["{self.log}"]
interval = "1s"
batch_bytes = {batch_bytes}
follow_rotated = "2s"
{rtf_extra}
[backend]
url = "{backend_url}"
health_interval = "1s"
health_timeout = "1s"
[exporter]
listen = ""
{extra}
""")
        self.proc: subprocess.Popen | None = None
        self.out = open(tmp / "daemon.log", "ab")

    # --- the daemon ------------------------------------------------------------------

    def once(self) -> None:
        r = subprocess.run([ISHOWD, "run", "--config", self.config, "--once"], capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr.decode()

    def start(self) -> "Harness":
        assert self.proc is None
        self.proc = subprocess.Popen([ISHOWD, "run", "--config", self.config], stdout=self.out, stderr=self.out)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(timeout=60) == 0
            finally:
                self.proc = None

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([ISHOWCTL, "--config", self.config, *args], capture_output=True, timeout=60)

    # --- the store --------------------------------------------------------------------

    def query(self, sql: str, args=()) -> list:
        if not os.path.exists(self.db):
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
        finally:
            conn.close()

    def count(self) -> int:
        rows = self.query("SELECT count(*) FROM rtf_records")
        return rows[0][0] if rows else 0

    def records(self) -> list[tuple]:
        return self.query("SELECT ts, source, voice, elapsed_ms, audio_seconds, first_after_start "
                          "FROM rtf_records ORDER BY ts")

    def counter(self, name: str, label: str = "") -> int:
        rows = self.query("SELECT value FROM log_counters WHERE name = ? AND label = ?", (name, label))
        return rows[0][0] if rows else 0

    def latest(self) -> dict[tuple[str, str], float]:
        """The newest value of each series in the store's head: {(metric, labels text): value}."""
        from ishowd.store.reader import Reader
        r = Reader(self.db)
        try:
            return {(x.name, x.labels_text): x.value for x in r.latest(0)}
        finally:
            r.close()

    def values(self, metric: str) -> list[float]:
        """Every value of ``metric`` still in the head, oldest first."""
        from ishowd.store.reader import Reader
        r = Reader(self.db)
        try:
            ids = {s.id for s in r.series(metric)}
            return [v for _, pairs in r.head(0) for sid, v in pairs if sid in ids]
        finally:
            r.close()

    def wait_count(self, n: int, timeout: float = 60) -> int:
        """Poll the store until it holds ``n`` records (never sleep to win a race: poll with a deadline)."""
        deadline = time.monotonic() + timeout
        got = self.count()
        while got != n and time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited with {self.proc.returncode}")
            time.sleep(0.05)
            got = self.count()
        return got

    def wait_for(self, predicate, timeout: float = 60, poll: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(poll)
        return predicate()

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.out.close()


def truth(emitted) -> list[tuple]:
    return sorted((e.ts_us, e.source, e.voice, e.elapsed_ms, round(e.audio_seconds, 6)) for e in emitted)


def stored(h: Harness) -> list[tuple]:
    return sorted((ts, src, voice, ms, round(audio, 6)) for ts, src, voice, ms, audio, _ in h.records())
