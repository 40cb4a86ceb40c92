"""Hostile bytes in the backend log never stop its reading: a real log file, the real ingestion.

Chat text reaches the log (a preview of it, and its declared ``text_len``),
and through it bytes at a line start. Whatever a line says, the reader moves
on: a line that cannot be a record is counted malformed, every record after
it is stored once (serially, by the catch-up workers, across restarts), and
the saved position reaches the end of the file.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import standin_backend as sb
from backend_harness import Harness, stored, truth
from ishowd.backend import catchup, logformat as lf
from ishowd.backend.ingest import Ingestor
from ishowd.catalog import loads_config
from ishowd.store.writer import Store
from standin_backend import StandinBackend

BATCH = 1 << 17                 # the smallest [rtf] batch_bytes
WHOLE = 4 * 120                 # a whole text's preview: at most 120 characters of at most 4 bytes
T0 = 1_759_000_000_000_000
FUZZ = int(os.environ.get("ISHOWD_FUZZ_EXAMPLES", "300"))   # raise it for a long fuzzing run
_TEXT_LEN = re.compile(rb"(\x1b\[3mtext_len\x1b\[0m\x1b\[2m=\x1b\[0m)\d+")
_SLOT = b"\x00slot\x00"


def fake(us: int, text_len: int, preview: bytes, *, tail: bool = True, voice: str = "evil") -> bytes:
    """A synthesis line from a forger: the backend's header with any text_len and any preview bytes."""
    line = sb.line_api(us, _SLOT.decode(), voice=voice, elapsed_ms=1)
    if not tail:
        line = line[:line.index(_SLOT) + len(_SLOT)] + b"\n"
    return _TEXT_LEN.sub(lambda m: m.group(1) + str(text_len).encode(), line).replace(_SLOT, preview)


def offset(h: Harness) -> int:
    return h.query("SELECT offset FROM log_positions WHERE role = 'current'")[0][0]


def genuine(b: StandinBackend, n: int, tag: str) -> bytes:
    return b"".join(b.api_bytes(f"{tag} {i} 字") if i % 3 else b.chat_bytes() for i in range(n))


@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "parallel"])
def test_lying_text_len_then_a_line_longer_than_a_batch(tmp_path, workers):
    """text_len=99999 on a three-character preview, and within those bytes a line longer than
    batch_bytes: the line is malformed, the records around it are stored once, the position
    reaches the end of the file, also across a restart and in the parallel catch-up."""
    b = StandinBackend(tmp_path / "logs" / "backend.log")
    (tmp_path / "logs").mkdir()
    b.start(http=False)
    h = Harness(tmp_path, batch_bytes=BATCH, rtf_extra=f"catchup_workers = {workers}\ncatchup_from = {BATCH}")
    try:
        b.write(genuine(b, 800, "before"))                 # a backlog: the parallel path takes it
        assert os.path.getsize(b.log_path) > 2 * BATCH
        b.write(fake(b.clock(), 99999, b"abc"))
        b.write(genuine(b, 20, "inside"))                  # within the 99999 bytes the line claims
        b.write(b"x" * (BATCH + 5000) + b"\n")
        b.write(genuine(b, 800, "after"))
        h.once()
        assert stored(h) == truth(b.emitted)
        assert h.counter("lines", "malformed") == 1
        assert offset(h) == os.path.getsize(b.log_path)
        b.write(genuine(b, 30, "restart"))
        h.once()
        assert stored(h) == truth(b.emitted)
        assert h.counter("ingest", "duplicates") == 0
        assert h.counter("lines", "malformed") == 1
        assert offset(h) == os.path.getsize(b.log_path)
    finally:
        h.close()
        b.stop()


# --- fuzzing: hostile lines between genuine records, through the real ingestion -----------------

def cut_before(line: bytes, key: bytes, at: int) -> bytes:
    """A fragment of a real line, cut somewhere before ``key`` (so it can never parse)."""
    return line[:at % line.index(key)] + b"\n"


LONG = [lf.MAX_LINE - 1, lf.MAX_LINE, lf.MAX_LINE + 1, BATCH - 1, BATCH, BATCH + 1, BATCH + 4097,
        2 * BATCH + 3]
piece = st.one_of(st.binary(max_size=40), st.sampled_from([
    b"\x00", b"\r", b"\n", b"\xff\xfe", b"\xe2\x80", b"\xc3", "…".encode(), "字".encode(), b"\x1b[2m", b"\x1b[0m",
    b" a=b", b"text_len=1 text_preview=", b"tts synthesis complete ", b" \x1b[2m\x1b[3mmethod\x1b[0m\x1b[2m=\x1b[0m",
    b"\r 50%|#####     | 1/2", sb.line_api(T0, "x")[:90], sb.line_chat(T0)[-60:]]))
fake_preview = st.lists(piece, max_size=6).map(lambda ps: b"".join(ps)[:100])
one_line_preview = fake_preview.map(lambda p: p.replace(b"\n", b" ")).filter(lambda p: b"\x1b[3m" not in p)
cut_text_len = st.one_of(st.integers(WHOLE + 1, 3 * BATCH),
                         st.sampled_from([WHOLE + 1, WHOLE + 3, 99999, 10 ** 12, 10 ** 30]))
# Lines that hold a whole header (up to text_preview=) but are no record; each is written right before
# a genuine record (the only bytes its window can reach), so whether it is one does not depend on chance.
forged = st.one_of(
    # says "cut" (text_len past a whole preview) with a preview that is not 120 characters and the ellipsis
    st.tuples(st.just("cut"), cut_text_len, fake_preview, st.booleans()),
    # says "whole" but its preview is shorter than its text_len, and no span fields end its line
    st.tuples(st.just("whole"), st.integers(1, WHOLE), one_line_preview, st.just(False)),
    # a preview that is a line longer than a batch, or a header longer than a line may be
    st.tuples(st.sampled_from(["long preview", "long header"]), st.sampled_from(LONG), st.just(b""), st.booleans()))
junk = st.one_of(
    st.tuples(st.just("bytes"), st.lists(piece, max_size=8).map(b"".join)),
    st.tuples(st.just("long"), st.sampled_from(LONG)),
    st.tuples(st.just("api fragment"), st.integers(0, 10 ** 6), st.booleans()),
    st.tuples(st.just("chat fragment"), st.integers(0, 10 ** 6)))
hostile_text = st.lists(st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=130),
    st.sampled_from(["\n", "\r", "\x00", "…", "\x1b[2m", " \x1b[2m", "\n" + fake(T0, 99999, b"abc").decode(),
                     "\n" + sb.line_api(T0, "x").decode(), "text_len=99999 text_preview=abc"])),
    min_size=1, max_size=5).map("".join)
genuine_record = st.one_of(st.tuples(st.just("api"), hostile_text, st.booleans()),
                           st.tuples(st.just("chat"), hostile_text))
segment = st.tuples(st.lists(junk, max_size=3), st.none() | forged, st.booleans(),
                    st.sampled_from(["", "\r", "\r 9%|#|\r"]), genuine_record, st.integers(0, 3))


def unnamed(data: bytes) -> bytes:
    """Junk that names no synthesis (the lines that do are made, and counted, on purpose)."""
    return data.replace(lf.MESSAGE, b"tts")


def build(segments, filler: int = 0):
    """The log's bytes, the stand-in that knows its genuine records, and how many lines are malformed.

    ``filler``: genuine records before the first segment and (up to three times as many) between them.
    """
    b = StandinBackend("/nonexistent", clock=sb.Clock(T0, 1_000_000))
    parts, malformed = [genuine(b, filler, "backlog")], 0
    for junks, forgery, plain, before, record, n_filler in segments:
        parts += [genuine(b, n_filler * filler, "filler")]
        for j in junks:
            if j[0] == "bytes":
                line = unnamed(j[1]) + b"\n"
            elif j[0] == "long":
                line = b"y" * j[1] + b"\n"
            elif j[0] == "api fragment":
                real = sb.line_api(b.clock(), "frag", voice="evil")
                line = cut_before(lf.strip_ansi(real) if j[2] else real, b"text_preview", j[1])
            else:
                line = cut_before(sb.line_chat(b.clock(), voice="evil"), b"resolved_voice", j[1])
            # a tracing line that names a synthesis, with a key (each has an underscore), but is none
            malformed += lf.MESSAGE in line and b"_" in line
            parts.append(line)
        if forgery is not None:
            kind, n, preview, tail = forgery
            preview = unnamed(preview)
            if kind == "long preview":
                line = fake(b.clock(), 99999, b"z" * n, tail=tail)
            elif kind == "long header":
                line = fake(b.clock(), 99999, b"abc", tail=tail, voice="v" * n)
            elif kind == "whole":
                line = fake(b.clock(), min(WHOLE, len(preview) + n), preview, tail=False)
            else:
                line = fake(b.clock(), n, preview, tail=tail)
            if plain:
                line = lf.strip_ansi(line)      # the header without colours
            # (after a \r on the same line it is part of that noise line; longer than a batch, noise)
            malformed += not before and len(line) <= BATCH
            parts.append(before.encode() + line)
        if record[0] == "api":
            parts.append((sb.noise_tqdm() if record[2] else b"") + b.api_bytes(record[1]))
        else:
            parts.append(b.chat_bytes(requested_voice=record[1].replace("\n", " ").replace("\r", " ")))
    return b"".join(parts), b, malformed


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> str:
    """An empty store file, migrated."""
    path = str(tmp_path_factory.mktemp("store") / "empty.db")
    Store(path).close()
    return path


class Reader:
    """The real ingestion of one log into a real store file, restartable (a daemon stopped and started)."""

    def __init__(self, tmp: str, log: str, migrated: str, workers: int = 0):
        self.db = os.path.join(tmp, "ishowd.db")
        shutil.copyfile(migrated, self.db)      # a fresh store, without migrating one per example
        self.text = (f'[storage]\npath = "{self.db}"\n[rtf]\nlogs = ["{log}"]\nbatch_bytes = {BATCH}\n'
                     f"catchup_workers = {workers}\ncatchup_from = {BATCH}\n")
        self.store = None
        self.restart()

    def restart(self) -> None:
        if self.store is not None:
            self.store.close()
        self.store = Store(self.db)
        self.ingestor = Ingestor(loads_config(self.text), self.store)

    def run(self) -> None:
        self.ingestor.run(0.0)

    def query(self, q: str) -> list:
        with self.store.transaction() as conn:
            return conn.execute(q).fetchall()

    def records(self) -> list:
        return sorted((ts, src, voice, ms, round(audio, 6))
                      for ts, src, voice, ms, audio in self.query(
                          "SELECT ts, source, voice, elapsed_ms, audio_seconds FROM rtf_records"))

    def counters(self) -> dict:
        return {(n, label): v for n, label, v in self.query("SELECT name, label, value FROM log_counters")}

    def offset(self) -> int:
        (row,) = self.query("SELECT \"offset\" FROM log_positions WHERE role = 'current'")
        return row[0]

    def close(self) -> None:
        self.store.close()


def check_ingested(r: Reader, b: StandinBackend, size: int, malformed: int) -> None:
    assert r.records() == truth(b.emitted)          # each genuine record once, and nothing else
    counters = r.counters()
    assert counters.get(("ingest", "duplicates"), 0) == 0
    assert counters.get(("lines", "malformed"), 0) == malformed
    assert counters.get(("lines", "synthesis"), 0) == len(b.emitted)
    assert r.offset() == size


@settings(max_examples=FUZZ // 3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(segment, min_size=1, max_size=6), st.lists(st.integers(0, 10 ** 6), max_size=4),
       st.integers(0, 4))
def test_fuzz_hostile_lines_appended_and_read_across_restarts(migrated, segments, cuts, restart_at):
    """The log written in pieces cut anywhere, read after each, the daemon restarted once."""
    data, b, malformed = build(segments)
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "backend.log")
        open(log, "wb").close()
        r = Reader(tmp, log, migrated)
        try:
            done = 0
            for i, cut in enumerate(sorted(c * len(data) // 10 ** 6 for c in cuts) + [len(data)]):
                with open(log, "ab") as f:
                    f.write(data[done:cut])
                done = max(done, cut)
                if i == restart_at:
                    r.restart()
                r.run()
            check_ingested(r, b, len(data), malformed)
        finally:
            r.close()


@pytest.mark.torture
@settings(max_examples=max(3, FUZZ // 40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(segment, min_size=2, max_size=8))
def test_fuzz_parallel_catchup_agrees_with_the_serial_reader(migrated, segments):
    """A backlog of hostile lines among filler records: the catch-up workers store what the serial
    reader stores, count what it counts, and end where it ends."""
    data, b, malformed = build(segments, filler=BATCH // 100)
    assert len(data) > 3 * BATCH            # the first batch is read serially, the rest by the workers
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "backend.log")
        with open(log, "wb") as f:
            f.write(data)
        got = []
        for workers in (0, 2):
            os.makedirs(os.path.join(tmp, str(workers)))
            r = Reader(os.path.join(tmp, str(workers)), log, migrated, workers)
            try:
                with mock.patch.object(catchup, "read_parallel", wraps=catchup.read_parallel) as parallel:
                    r.run()
                assert parallel.called == bool(workers)
                check_ingested(r, b, len(data), malformed)
                got.append((r.records(), r.counters()))
            finally:
                r.close()
        assert got[0] == got[1]


# --- the scanner: what a line can hold bounds every wait -------------------------------------------

def synthesis(res: lf.ScanResult) -> list:
    return [(e.ts_us, e.source, e.voice) for e in res.events if isinstance(e, lf.Synthesis)]


@pytest.mark.parametrize("text_len", [WHOLE + 1, WHOLE + 3, 99999, 10 ** 12])
@pytest.mark.parametrize("tail", [True, False], ids=["span fields", "no span fields"])
def test_a_text_len_past_a_whole_preview_wants_a_cut_one(text_len, tail):
    b = StandinBackend("/nonexistent", clock=sb.Clock(T0, 1_000_000))
    data = fake(T0, text_len, b"abc", tail=tail) + b.chat_bytes()
    res = lf.scan(data)
    assert synthesis(res) == [(e.ts_us, e.source, e.voice) for e in b.emitted]
    assert res.counts[("lines", "malformed")] == 1
    assert res.consumed == len(data)         # decided by the bytes there, not by the ones it claims


@pytest.mark.parametrize("first", [
    fake(T0, 99999, b"abc"),                     # says cut: 120 characters and the ellipsis cannot fit
    fake(T0, WHOLE + 1, b"abc"),
    fake(T0, 300, b"abc", tail=False),           # says whole, and its 300 bytes run into the long line
    fake(T0, 300, b"\xff" * 3, tail=False),
    lf.strip_ansi(fake(T0, 300, b"abc", tail=False)),
    fake(T0, 300, b"abc", voice="v" * (BATCH - 3000)),   # a header longer than a line may be
], ids=["cut", "cut by one", "whole", "undecodable", "plain", "long header"])
def test_a_line_before_one_longer_than_the_batch_is_decided(first):
    """The batch ends inside a line longer than itself: whatever the first line says, it is decided
    with the batch's bytes (the reader would otherwise read this same batch again and again)."""
    res = lf.scan((first + b"y" * (2 * BATCH) + b"\n")[:BATCH])
    assert res.consumed == len(first)
    assert res.counts[("lines", "malformed")] == 1 and not res.events


def long_tail(t) -> bytes:
    """A record whose span fields are about as long as a record's may be (TAIL_MAX), with or without
    colours."""
    text, plain, more = t
    line = sb.line_api(T0, text, voice="evil")
    head = line[:line.index(sb.span_tail("POST", "/api/tts").encode())]
    field = b" a=b" if plain else b" \x1b[2m\x1b[3ma\x1b[0m\x1b[2m=\x1b[0mb\x1b[0m"
    head = lf.strip_ansi(head) if plain else head
    return head + field * (4096 // len(field) + more) + b"\n"


first_line = st.one_of(
    st.tuples(st.integers(0, 10 ** 13), fake_preview, st.booleans(), st.sampled_from([1, 300, lf.MAX_LINE - 600,
              lf.MAX_LINE + 1, BATCH - 5000])).map(lambda t: fake(T0, t[0], t[1], tail=t[2], voice="v" * t[3])),
    st.tuples(st.sampled_from(["abc", "x" * 130]), st.booleans(), st.integers(-2, 2)).map(long_tail))


@settings(max_examples=FUZZ // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.one_of(first_line, st.lists(piece, max_size=6).map(lambda ps: b"".join(ps) + b"\n")),
                          st.sampled_from([1, 3, 1000, 2 * BATCH])), min_size=1, max_size=4))
def test_fuzz_batches_always_move_and_see_what_one_scan_sees(lines):
    """Read as the serial reader does (a batch from the last position, skipping the rest of an overlong
    line): every full batch moves, the reading ends at the end, and it finds the records one scan of
    it all finds (each candidate line followed by records, a short line or one longer than a batch)."""
    b = StandinBackend("/nonexistent", clock=sb.Clock(T0, 1_000_000))
    data = b"".join(line + (b"y" * filler + b"\n" if filler > 3 else genuine(b, filler, "r")) for line, filler in lines)
    pos, skip, found = 0, False, []
    while pos < len(data):
        res = lf.scan(data[pos:pos + BATCH], skip_line=skip)
        assert res.consumed > 0
        found += synthesis(res)
        pos, skip = pos + res.consumed, res.skip_line
    assert found == synthesis(lf.scan(data))
