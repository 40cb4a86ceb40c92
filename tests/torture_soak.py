"""An accelerated soak: simulated days of 1 s ticks and a growing backend log, through the store's API
and the real log ingestion, on a simulated clock.

``python tests/torture_soak.py --days 1 --dir DIR`` runs it in a process of its own (so that neither
pytest nor the checks weigh in its resident memory) and writes ``DIR/soak.json``: its RSS after each
simulated hour, the WAL's size, how long it took. ``verify(DIR)`` then compares the store with a
brute-force computation over exactly what was written, which it regenerates (the tick values are a
pure function of series and time; the records come from a seeded generator), so the soak itself
keeps nothing it writes.

Every simulated second is one tick as the daemon writes it (``Store.write`` then ``Store.maintain``,
which seals each hour an hour after it ends and prunes hourly); every 5 s the log ingestion reads the
log (``Ingestor.run``), which gains a synthesis at random intervals stamped at the simulated time, is
rotated by copy-then-truncate every day at 03:00, and truncated by a backend restart every other
day at 12:00. The process's wall clock is the simulated one (``time.time`` replaced): ingestion
stamps positions and picks each sample's storage tier by ``time.time()``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from standin_backend import (SAMPLE_RATE, line_api, line_chat, line_event,  # noqa: E402
                             request_finished, request_started)

START = 1_793_577_600          # 2026-11-02 00:00 UTC, a Monday
SERIES = 40                    # the reference tick's size (docs/performance.md)
RAW_RETENTION = 14 * 86400     # [storage] raw_retention and minute_retention, as the defaults
MINUTE_RETENTION = 90 * 86400
RTF_INTERVAL = 5               # [rtf] interval
VOICES = ("walter", "demo")
HOUR = 3600
DAY = 86400


def value(i: int, t: int) -> float:
    """Series ``i`` at second ``t``, quantised as the real sources are (the codec's decimal mode) but
    for every fourth series, whose float quotients take its XOR mode."""
    kind = i % 4
    if kind == 0:               # a temperature to the millidegree, drifting
        return 40 + ((t // 7 * 31 + i * 977) % 30000) / 1000
    if kind == 1:               # bytes, in pages
        return float(8 << 30) + ((t // 10 * (i + 1) * 4096) % (1 << 28))
    if kind == 2:               # a load in per-mille, mostly idle
        return 0.0 if (t + i) % 5 else ((t * 7 + i) % 1001) / 10
    return ((t % 977) * (i + 1)) / 13.0


def records(seed: int, start: int, end: int):
    """The syntheses the log gains in [start, end): (ts_us, source, voice, elapsed_ms, audio seconds),
    at least 10 s apart (one per second at most: the store keeps a second's first sample)."""
    rnd = random.Random(seed)
    t = start + rnd.randint(10, 60)
    while t < end:
        us = t * 1_000_000 + rnd.randrange(1_000_000)
        voice = rnd.choice(VOICES)
        if rnd.random() < 0.25:
            samples = 240000
            audio = samples / SAMPLE_RATE
            yield us, "chat", voice, max(1, round(rnd.uniform(0.2, 0.5) * audio * 1000)), audio
        else:
            samples = rnd.choice((120000, 201600, 288000))
            audio = samples / SAMPLE_RATE
            yield us, "api", voice, max(1, round(rnd.uniform(0.2, 0.4) * audio * 1000)), audio
        t += rnd.randint(10, 90)


def record_bytes(rec) -> bytes:
    us, source, voice, elapsed, audio = rec
    if source == "chat":
        return line_chat(us, elapsed_ms=elapsed, audio_bytes=44 + 2 * round(audio * SAMPLE_RATE), voice=voice)
    begun = us - elapsed * 1000
    return (request_started(begun, "POST", "/api/tts")
            + line_api(us, f"soak {us}", voice=voice, waveform_len=round(audio * SAMPLE_RATE), elapsed_ms=elapsed)
            + request_finished(begun, "POST", "/api/tts", 200, elapsed))


def boot_bytes(us: int) -> bytes:
    return (line_event(us, "initialized F5-TTS runtime", pairs=[("voices", len(VOICES))])
            + line_event(us + 1, "backend ready", pairs=[("addr", "0.0.0.0:27121")]))


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def rss_held_bytes() -> int:
    """VmRSS once the C heap has handed its free memory back (``malloc_trim``), measured in a forked
    child so that this process's heap is left as it is: what the process holds, not what the
    allocator keeps for later. VmRSS itself where the C library has no ``malloc_trim``."""
    import ctypes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: trim, measure, report, leave
        try:
            try:
                ctypes.CDLL(None).malloc_trim(0)
            except AttributeError:
                pass
            os.write(write, str(rss_bytes()).encode())
        finally:
            os._exit(0)
    os.close(write)
    try:
        return int(os.read(read, 64))
    finally:
        os.close(read)
        os.waitpid(pid, 0)


def config_text(dirpath: Path) -> str:
    return (f'[storage]\npath = "{dirpath / "soak.db"}"\n[sampling]\ninterval = "1s"\n'
            f'[rtf]\nlogs = ["{dirpath / "logs" / "backend.log"}"]\ninterval = "{RTF_INTERVAL}s"\n'
            f'catchup_workers = 0\n[exporter]\nlisten = ""\n')


def soak(dirpath: Path, days: float, seed: int, leak_kib_per_hour: int = 0) -> dict:
    """``leak_kib_per_hour``: memory kept each simulated hour on purpose (the checks' own test)."""
    clock = [float(START)]
    time.time = lambda: clock[0]          # the simulated wall clock (see the module's docstring)

    from ishowd import catalog
    from ishowd.backend.ingest import Ingestor
    from ishowd.metrics import Sample, declare
    from ishowd.store.writer import Store

    (dirpath / "logs" / "archive").mkdir(parents=True, exist_ok=True)
    cfg = catalog.loads_config(config_text(dirpath), "soak")
    db = str(dirpath / "soak.db")
    store = Store(db, raw_retention=RAW_RETENTION, minute_retention=MINUTE_RETENTION)
    ingestor = Ingestor(cfg, store)
    metrics = [declare(f"soak_{i}_ratio", "ratio", "accelerated soak") for i in range(SERIES)]
    log_path = str(dirpath / "logs" / "backend.log")
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, boot_bytes(START * 1_000_000))
    end = START + round(days * DAY)
    pending = records(seed, START, end)
    nxt = next(pending, None)
    written = 0
    wal_max = hour_wal = 0
    hourly = []
    wal = db + "-wal"
    leaked = []
    began = time.perf_counter()
    for t in range(START, end):
        clock[0] = t + 0.25                # a tick starts a moment after its second
        while nxt is not None and nxt[0] <= t * 1_000_000:
            os.write(fd, record_bytes(nxt))
            written += 1
            nxt = next(pending, None)
        if t % DAY == 3 * HOUR:            # the weekly rotation's layout, daily: copy, then truncate
            day = datetime.fromtimestamp(t, timezone.utc)
            copy = dirpath / "logs" / "archive" / day.strftime("%Y%m") / day.strftime("backend_%Y%m%d.log")
            copy.parent.mkdir(parents=True, exist_ok=True)
            with open(log_path, "rb") as src:
                copy.write_bytes(src.read())
            os.truncate(log_path, 0)
        if t % (2 * DAY) == 12 * HOUR:     # a backend restart (": >" then boot lines), read up to it first
            ingestor.run(t)
            os.truncate(log_path, 0)
            os.write(fd, boot_bytes(t * 1_000_000))
        store.write(t, [Sample(m, value(i, t)) for i, m in enumerate(metrics)])
        store.maintain(t)
        if t % RTF_INTERVAL == 0:
            ingestor.run(t)
        try:
            hour_wal = max(hour_wal, os.stat(wal).st_size)
        except FileNotFoundError:
            pass
        if (t + 1) % HOUR == 0:
            leaked.append(b"\x01" * (leak_kib_per_hour << 10))
            hourly.append({"hour": (t + 1 - START) // HOUR, "rss": rss_bytes(), "held": rss_held_bytes(),
                           "wal_max": hour_wal,
                           "blocks": sys.getallocatedblocks(), "seconds": time.perf_counter() - began})
            wal_max, hour_wal = max(wal_max, hour_wal), 0
    ingestor.run(end)
    os.close(fd)
    store.close()
    return {"days": days, "seed": seed, "start": START, "end": end, "series": SERIES, "records": written,
            "wal_max": max(wal_max, hour_wal), "hourly": hourly, "seconds": time.perf_counter() - began}


# Until every periodic event has happened once (hourly seals, the daily rotation, a new day's 1h
# chunks, the restart every other day), or half of a shorter run. VmRSS as it is also carries what
# glibc keeps of sealing's transient lists after freeing them: it steps up now and then over the first
# week (by 0.5 MiB on days 3 and 7 in one 21-day run) while the memory held stays level.
WARM_UP_HOURS = 48


def warm_up_hours(figures: dict) -> int:
    return min(WARM_UP_HOURS, len(figures["hourly"]) // 2)


def rss_growth(figures: dict, key: str = "held") -> tuple[int, int, int]:
    """(RSS at the end of the warm-up, the most after it, the growth) in bytes; ``key``: "held" (once the
    C heap's free memory is handed back: what a leak grows) or "rss" (VmRSS as it is)."""
    rss = [h[key] for h in figures["hourly"]]
    warm = warm_up_hours(figures)
    base = rss[warm - 1]
    top = max(rss[warm:])
    return base, top, top - base


# --- the brute force ---------------------------------------------------------------------------------

def brute(values) -> list:
    values = list(values)
    return [len(values), min(values), max(values), math.fsum(values)]


def verify(dirpath: Path, figures: dict, *, series=None) -> list[str]:
    """Compare the soak's store with what it was fed. ``series``: the tick series to compare in full
    (default all); the records and their ``tts_rtf`` rollups are always compared in full."""
    import sqlite3

    from ishowd.store import codec
    from ishowd.store.reader import Reader

    problems: list[str] = []
    start, end = figures["start"], figures["end"]
    db = str(dirpath / "soak.db")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    ids = {name: sid for sid, name, labels in conn.execute("SELECT id, name, labels FROM series")
           if name.startswith("soak_")}
    check = SERIES if series is None else series
    sealed_until = conn.execute("SELECT coalesce(min(ts), ?) FROM head", (end,)).fetchone()[0]
    sealed_until -= sealed_until % HOUR
    # maintain() last pruned at the start of the last hour: chunks older than retention from then are gone
    last_prune = (end - 1) - (end - 1) % HOUR
    raw_from, minute_from = last_prune - RAW_RETENTION, last_prune - MINUTE_RETENTION
    for i in range(check) if isinstance(check, int) else check:
        sid = ids[f"soak_{i}_ratio"]
        chunks = {(kind, st): codec.decode(blob) for kind, st, blob in conn.execute(
            "SELECT kind, start_ts, data FROM chunks WHERE series_id = ?", (sid,))}
        day_1h: dict = {}
        for hour in range(start, sealed_until, HOUR):
            ts = list(range(hour, hour + HOUR))
            vals = [value(i, t) for t in ts]
            raw = chunks.get(("raw", hour))
            if hour < raw_from:
                if raw is not None:
                    problems.append(f"soak_{i} hour {hour}: a raw chunk older than raw_retention was kept")
            elif raw is None or raw[0] != ts or raw[1][0] != vals:
                problems.append(f"soak_{i} hour {hour}: the raw chunk differs from the samples written")
            minutes = {m: brute(vals[m - hour:m - hour + 60]) for m in range(hour, hour + HOUR, 60)}
            got = chunks.get(("1m", hour))
            if hour < minute_from:
                if got is not None:
                    problems.append(f"soak_{i} hour {hour}: a 1m chunk older than minute_retention was kept")
            elif got is None or _rows(got) != minutes:
                problems.append(f"soak_{i} hour {hour}: 1m rollups differ from the brute force")
            day_1h.setdefault(hour - hour % DAY, {})[hour] = brute(vals)
        for day, want in day_1h.items():
            got = chunks.get(("1h", day))
            if got is None or _rows(got) != want:
                problems.append(f"soak_{i} day {day}: 1h rollups differ from the brute force")
        if len(problems) > 20:
            return problems
    want_records = sorted((us, src, voice, ms, round(audio, 6)) for us, src, voice, ms, audio in
                          records(figures["seed"], start, end))
    got_records = sorted((ts, src, voice, ms, round(audio, 6)) for ts, src, voice, ms, audio in conn.execute(
        "SELECT ts, source, voice, elapsed_ms, audio_seconds FROM rtf_records"))
    if got_records != want_records:
        lost = sorted(set(want_records) - set(got_records))
        problems.append(f"records: {len(got_records)} stored of {len(want_records)} written; "
                        f"{len(lost)} lost (first {lost[:1]}), {len(set(got_records) - set(want_records))} unknown")
    tts: dict = {}
    for ts_us, engine, voice, source, rtf in conn.execute("SELECT ts, engine, voice, source, rtf FROM rtf_records"):
        tts.setdefault((engine, voice, source), {})[ts_us // 1_000_000] = rtf
    conn.close()
    reader = Reader(db)
    try:
        # history adds the tiers up (1h, 1m, raw, the unsealed head): a few tick series show it whole
        # (steps that only raw samples answer, over what raw_retention keeps; the rest over the whole run)
        def since(step: int) -> int:
            return max(start, raw_from) if reader.tier_for(step) == "raw" else max(start, minute_from)

        for i in range(min(4, SERIES)):
            want = {t: value(i, t) for t in range(start, end)}
            for step in HISTORY_STEPS:
                compare_history(problems, reader, f"soak_{i}_ratio", {}, want, since(step), end, step)
        for (engine, voice, source), want in sorted(tts.items()):
            for step in HISTORY_STEPS:
                compare_history(problems, reader, "tts_rtf", {"engine": engine, "voice": voice, "source": source},
                                want, since(step), end, step)
    finally:
        reader.close()
    return problems


HISTORY_STEPS = (10, 60, 300, HOUR, DAY)    # raw, 1m, 1m, 1h and 1h tiers


def compare_history(problems: list, reader, name: str, labels: dict, want: dict, start: int, end: int,
                    step: int) -> None:
    """``Reader.history`` against buckets computed from ``want`` ({ts: value}). Counts, minima and maxima
    must be equal; means within 1e-13 (history adds the stored sums up, the brute force takes fsum)."""
    buckets: dict = {}
    for t, v in want.items():
        if start <= t < end:
            buckets.setdefault(t - t % step, []).append(v)
    expect = {b: brute(vs) for b, vs in buckets.items()}
    got = {b.ts: b for b in reader.history(name, labels, start, end, step)}
    if got.keys() != expect.keys():
        problems.append(f"history {name}{labels} step {step}: buckets {len(got)} != {len(expect)}")
        return
    for b, (n, lo, hi, total) in expect.items():
        h = got[b]
        if (h.count, h.min, h.max) != (n, lo, hi) or not math.isclose(h.mean, total / n, rel_tol=1e-13):
            problems.append(f"history {name}{labels} step {step} bucket {b}: {tuple(h)[2:]} != "
                            f"{(n, lo, hi, total / n)}")
            return


def _rows(decoded) -> dict:
    ts, cols = decoded
    return {t: [int(cols[0][k]), cols[1][k], cols[2][k], cols[3][k]] for k, t in enumerate(ts)}


def run(dirpath: Path, days: float, seed: int = 1, leak_kib_per_hour: int = 0) -> dict:
    """The soak in a process of its own; its figures."""
    import subprocess
    r = subprocess.run([sys.executable, __file__, "--days", str(days), "--dir", str(dirpath), "--seed", str(seed),
                        "--leak-kib-per-hour", str(leak_kib_per_hour)],
                       capture_output=True, text=True, timeout=6 * 3600)
    if r.returncode != 0:
        raise RuntimeError(f"the soak failed: {r.stderr[-3000:]}")
    return json.loads((dirpath / "soak.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--dir", required=True, help="where the store, the log and soak.json go")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--leak-kib-per-hour", type=int, default=0, help="keep this much each hour (to test the checks)")
    args = ap.parse_args()
    figures = soak(Path(args.dir), args.days, args.seed, args.leak_kib_per_hour)
    Path(args.dir, "soak.json").write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
