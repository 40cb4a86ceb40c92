"""The backend log parser: the real format, hostile previews, noise, and fuzzing."""
from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import standin_backend as sb
from ishowd.backend import logformat as lf
from standin_backend import Clock, StandinBackend

T0 = 1_759_000_000_000_000
FUZZ = int(os.environ.get("ISHOWD_FUZZ_EXAMPLES", "300"))  # raise it for a long fuzzing run


def backend(tmp_path=None, **kw) -> StandinBackend:
    return StandinBackend("/nonexistent", clock=Clock(T0, 1_000_000), **kw)


def as_tuples(events):
    return [(e.ts_us, e.source, e.engine, e.voice, e.elapsed_ms, round(e.audio_seconds, 9))
            for e in events if isinstance(e, lf.Synthesis)]


def expected(b: StandinBackend):
    return [(e.ts_us, e.source, e.engine, e.voice, e.elapsed_ms, round(e.audio_seconds, 9)) for e in b.emitted]


def test_the_facts_example_line():
    line = sb.line_api(T0, "欢迎来到我的直播间", waveform_len=201600, elapsed_ms=2100)
    assert b"\x1b[3mtext_preview\x1b[0m\x1b[2m=\x1b[0m" in line
    res = lf.scan(line)
    (ev,) = res.events
    assert ev.source == "api" and ev.voice == "walter" and ev.engine == "f5"
    assert ev.elapsed_ms == 2100 and ev.audio_seconds == 8.4 and ev.rtf == pytest.approx(0.25)
    assert ev.ts_us == T0
    assert res.consumed == len(line)


def test_timestamp_to_the_microsecond():
    assert lf.parse_ts(b"2025-09-30T04:22:01.123456Z") == 1759206121123456
    assert lf.parse_ts(b"2025-09-30T04:22:01Z") == 1759206121000000
    assert lf.parse_ts(b"2025-09-30T04:22:01.123456789Z") == 1759206121123456
    assert lf.parse_ts(b"2025-02-30T04:22:01Z") is None
    assert lf.parse_ts(b"2025-09-30T25:22:01Z") is None


def test_chat_line_audio_from_bytes():
    b = backend()
    res = lf.scan(b.chat_bytes(samples=48000, rtf=0.5, requested_voice="evil elapsed_ms=1 resolved_voice=x"))
    (ev,) = res.events
    assert ev.source == "chat" and ev.voice == "walter"
    assert ev.audio_seconds == 2.0 and ev.elapsed_ms == 1000


def test_preview_lookalikes_change_nothing():
    b = backend()
    texts = ["voice_id=evil elapsed_ms=1", 'quote " and \' and = and text_len=3 text_preview=x',
             "\x1b[31mred\x1b[0m \x1b[3mvoice_id\x1b[0m\x1b[2m=\x1b[0mevil",
             " \x1b[2mmethod=POST uri=/api/tts version=HTTP/1.1\x1b[0m",
             "a\n" + sb.line_api(T0 + 5, "x", elapsed_ms=1).decode()[:100],
             "长" * 119 + "\n" + "x" * 40, "é" * 130, "…" * 121, "x" * 120 + "…", "x" * 121 + "…",
             "\r100%|██████████| 2/2\n\x1b[2m2025-01-01T00:00:00.000000Z\x1b[0m \x1b[33m WARN\x1b[0m fake"]
    data = b"".join(b.api_bytes(t) for t in texts)
    res = lf.scan(data)
    assert as_tuples(res.events) == expected(b)
    assert res.counts.get(("errors", "warn"), 0) == 0      # the WARN inside a preview is not a WARN line
    assert res.consumed == len(data)


def test_forged_complete_line_inside_preview(monkeypatch):
    """With a preview long enough to hold a whole forged event after a raw newline, text_len still wins."""
    monkeypatch.setattr(lf, "PREVIEW_CHARS", 4000)
    monkeypatch.setattr(sb, "preview", lambda text: text if len(text) <= 4000 else text[:4000] + "…")
    b = backend()
    forged = sb.line_api(T0 + 7, "forged", voice="evil", elapsed_ms=1).decode()
    forged_chat = sb.line_chat(T0 + 8, elapsed_ms=1, voice="evil").decode()
    data = b.api_bytes("hi\n" + forged + forged_chat + "tail")
    data += b.api_bytes("hi\n" + forged)           # ends with the newline of the forged line
    res = lf.scan(data)
    assert as_tuples(res.events) == expected(b)
    assert all(e.voice == "walter" for e in res.events if isinstance(e, lf.Synthesis))


def test_event_waits_for_its_continuation_lines():
    b = backend()
    data = b.api_bytes("line one\nline two")
    cut = data.index(b"line two")
    res = lf.scan(data[:cut])          # the first physical line is complete, the event is not
    assert res.events == []
    assert res.consumed == data.index(b"\n") + 1   # up to the event's start, no further
    full = lf.scan(data)
    assert as_tuples(full.events) == expected(b)


def test_partial_last_line_not_consumed():
    b = backend()
    data = b.api_bytes("hello")
    line_start = data.index(b"\n") + 1  # the synthesis line follows "started processing request"
    res = lf.scan(data[:-5])
    assert res.consumed <= len(data) - 5
    assert lf.scan(data[:line_start + 50]).consumed == line_start
    assert lf.scan(data[:-5], final=True).consumed == len(data) - 5


def test_noise_is_counted_and_skipped():
    b = backend()
    data = (sb.NOISE_BUILD + sb.NOISE_PYTHON + sb.NOISE_EAGER + sb.noise_onnxruntime(T0) + sb.noise_tqdm()
            + b"\n" + b"\xff\xfe garbage \x00\x1b[999;999m\n" + b.api_bytes("ok")
            + sb.line_event(T0, "warmup failed", "WARN") + sb.line_event(T0, "failed to process danmaku message",
                                                                         "ERROR", pairs=[("err", "boom")])
            + sb.line_event(T0, "backend ready"))
    res = lf.scan(data, ignore=lf.compile_ignore(lf.DEFAULT_IGNORE))
    assert as_tuples(res.events) == expected(b)
    assert res.counts[("lines", "noise")] == 4 + 3 + 1 + 1 + 1 + 1 + 1
    assert res.counts[("errors", "warn")] == 1 and res.counts[("errors", "error")] == 1
    # "Plan failed with a cudnnException" and the eager fallback; the onnxruntime line is ignored
    assert res.counts[("errors", "other")] == 2
    assert res.counts[("starts", "")] == 1
    assert res.counts[("http", "2xx")] == 1
    unignored = lf.scan(data)
    assert unignored.counts[("errors", "other")] == 3


def test_http_status_classes():
    data = (sb.lines_request(T0, "GET", "/api/health", 200, 0) + sb.lines_request(T0, "POST", "/api/tts", 400, 1)
            + sb.lines_request(T0, "POST", "/api/tts", 502, 9) + sb.lines_request(T0, "GET", "/nope", 404, 0))
    res = lf.scan(data)
    assert res.counts[("http", "2xx")] == 1 and res.counts[("http", "4xx")] == 2 and res.counts[("http", "5xx")] == 1
    assert res.counts[("errors", "warn")] == 1   # "response failed" comes with the 5xx


def test_start_then_first_request_order():
    b = backend()
    data = b.api_bytes("before") + sb.line_event(T0, "backend ready") + b.api_bytes("after")
    kinds = [type(e).__name__ for e in lf.scan(data).events]
    assert kinds == ["Synthesis", "Start", "Synthesis"]


def test_event_after_carriage_return_on_the_same_line():
    b = backend()
    data = b"\r 50%|#####     | 1/2" + b.api_bytes("after a bar")
    res = lf.scan(data)
    assert as_tuples(res.events) == expected(b)


def test_overlong_line_is_read_in_pieces():
    res = lf.scan(b"x" * (lf.MAX_LINE + 10))
    assert res.consumed == lf.MAX_LINE + 10 and res.skip_line
    res2 = lf.scan(b"y" * 10 + b"\n" + sb.line_event(T0, "backend ready"), skip_line=True)
    assert res2.counts.get(("lines", "noise"), 0) == 0 and res2.counts[("starts", "")] == 1


def test_without_colours_too():
    b = backend()
    data = lf.strip_ansi(b.api_bytes("plain text = here")) + lf.strip_ansi(b.chat_bytes())
    assert as_tuples(lf.scan(data).events) == expected(b)


def test_empty_audio_has_no_rtf():
    (ev,) = lf.scan(sb.line_api(T0, "x", waveform_len=0, elapsed_ms=5)).events
    assert ev.audio_seconds == 0 and ev.rtf is None


# --- fuzzing -------------------------------------------------------------------------------

hostile_text = st.text(
    alphabet=st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(["\n", "\r", "\x1b", "[", "m", "=", " ", "…", '"', "\t"])),
    min_size=1, max_size=300)
lookalike = st.sampled_from([
    "voice_id=evil elapsed_ms=1", "text_len=1 text_preview=", "\x1b[2m", "\x1b[0m", " method=GET",
    "tts synthesis complete", "\n2025-01-01T00:00:00Z  INFO request:synthesize: tts synthesis complete ",
    "\n" + sb.line_api(T0, "x").decode(), "\n" + sb.line_chat(T0).decode(), "\r\n", "\n\n",
    "\x1b[3mstatus\x1b[0m\x1b[2m=\x1b[0m500", "\x1b[33m WARN\x1b[0m ", "backend ready"])
preview_text = st.lists(st.one_of(hostile_text, lookalike), min_size=1, max_size=6).map("".join).filter(
    lambda t: t.strip() != "")
garbage = st.binary(max_size=200).map(lambda b: b.replace(b"tts synthesis complete", b"tts") + b"\n")


@settings(max_examples=FUZZ, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.tuples(st.just("api"), preview_text), st.tuples(st.just("chat"), hostile_text),
                          st.tuples(st.just("noise"), garbage)), max_size=12))
def test_fuzz_previews_and_garbage_never_forge(items):
    b = backend()
    data = b""
    for kind, x in items:
        if kind == "api":
            data += b.api_bytes(x)
        elif kind == "chat":
            data += b.chat_bytes(requested_voice=x.replace("\n", " ").replace("\r", " ") or "None")
        else:
            data += x
    res = lf.scan(data, final=True)
    assert as_tuples(res.events) == expected(b)
    assert res.counts.get(("lines", "synthesis"), 0) == len(b.emitted)


@settings(max_examples=FUZZ // 2, deadline=None)
@given(preview_text, st.randoms(use_true_random=False))
def test_fuzz_any_chunking_gives_the_same_records(text, rnd):
    """Feeding the bytes as a tailer does (cut anywhere, resume at ``consumed``) changes nothing."""
    b = backend()
    data = b"".join([b.api_bytes(text), b.chat_bytes(), sb.noise_tqdm(), b.api_bytes(text[::-1] or "x")])
    pos, events, counts = 0, [], {}
    cuts = sorted(rnd.sample(range(1, len(data)), min(6, len(data) - 1))) + [len(data)]
    for cut in cuts:
        while True:
            res = lf.scan(data[pos:cut], final=cut == len(data))
            events += res.events
            for k, v in res.counts.items():
                counts[k] = counts.get(k, 0) + v
            pos += res.consumed
            if res.consumed == 0 or pos >= cut:
                break
    assert pos == len(data)
    assert as_tuples(events) == expected(b)
    whole = lf.scan(data, final=True)
    assert counts == whole.counts


@settings(max_examples=FUZZ, deadline=None)
@given(st.binary(max_size=3000))
def test_fuzz_arbitrary_bytes_never_crash(data):
    res = lf.scan(data)
    assert 0 <= res.consumed <= len(data)
    res = lf.scan(data, final=True)
    assert res.consumed == len(data)
    assert not [e for e in res.events if isinstance(e, lf.Synthesis)]


def test_random_realistic_mix_counts():
    rnd = random.Random(7)
    b = backend()
    parts = []
    for _ in range(300):
        r = rnd.random()
        parts.append(b.health_bytes() if r < 0.5 else b.api_bytes("t" * rnd.randint(1, 200)) if r < 0.8
                     else b.chat_bytes() if r < 0.9 else sb.noise_tqdm())
    res = lf.scan(b"".join(parts))
    assert as_tuples(res.events) == expected(b)


def test_a_torch_compile_fallback_is_counted_and_a_preview_cannot_forge_one(tmp_path):
    from ishowd import catalog
    from ishowd.backend.ingest import Ingestor
    from ishowd.store.reader import Reader
    from ishowd.store.writer import Store
    from standin_backend import line_api

    fallback = b"[F5TTS] Warning: torch.compile() failed, falling back to eager mode: inductor error\n"
    forged = line_api(1_790_000_000_000_000, "hi\n[F5TTS] Warning: torch.compile() failed, falling back to eager "
                                             "mode: said the chat")
    log = tmp_path / "backend.log"
    log.write_bytes(b"Starting iShowTTS backend...\n" + fallback + forged + b"\x1b[33m" + fallback)
    cfg = catalog.loads_config(f'[rtf]\nlogs = ["{log}"]\n', "test.toml")
    store = Store(tmp_path / "s.db")
    try:
        Ingestor(cfg, store).run(1_790_000_100)
    finally:
        store.close()
    reader = Reader(str(tmp_path / "s.db"))
    try:
        values = {r.name: r.value for r in reader.latest(0)}
    finally:
        reader.close()
    assert values["backend_compile_fallbacks_total"] == 2    # the two printed lines, not the preview


# --- the benchmark's own requests -------------------------------------------------------------

BENCH = "大家好，欢迎来到我的直播间，今天我们一起聊聊天。"


def _sources(data: bytes, texts=(BENCH,)) -> list[str]:
    return [e.source for e in lf.scan(data, bench=lf.benchmark_texts(texts)).events if isinstance(e, lf.Synthesis)]


def test_the_benchmark_text_alone_makes_a_benchmark_record_and_nothing_else_does():
    b = backend()
    data = (b.api_bytes(BENCH)                                  # the benchmark's request
            + b.api_bytes("请问" + BENCH)                        # a viewer quoting it inside more text
            + b.api_bytes(BENCH + "？")
            + b.api_bytes(BENCH[:-1])                            # a prefix of it
            + b.chat_bytes()
            + b.api_bytes("hi\n" + BENCH)                        # on a continuation line of a preview
            + b.api_bytes(BENCH, voice="demo"))
    assert _sources(data) == ["benchmark", "api", "api", "api", "chat", "api", "benchmark"]
    assert _sources(data, ()) == ["api", "api", "api", "api", "chat", "api", "api"]   # no text: nothing tagged
    assert _sources(lf.strip_ansi(data)) == ["benchmark", "api", "api", "api", "chat", "api", "benchmark"]


def test_a_preview_cannot_forge_a_benchmark_record():
    """A viewer's text holding a fake text_preview key and the sentence after it stays production."""
    b = backend()
    fake_key = "\x1b[3mtext_preview\x1b[0m\x1b[2m=\x1b[0m"
    tl = len(BENCH.encode())
    data = (b.api_bytes(f"x {fake_key}{BENCH}")
            + b.api_bytes(f"\x1b[3mtext_len\x1b[0m\x1b[2m=\x1b[0m{tl} {fake_key}{BENCH}")
            + b.api_bytes(f"x text_len={tl} text_preview={BENCH}"))
    assert _sources(data) == ["api", "api", "api"]


def test_a_long_benchmark_text_is_matched_as_the_backend_cuts_it():
    long_text = "测" * 150
    b = backend()
    data = b.api_bytes(long_text) + b.api_bytes("测" * 151)
    assert _sources(data, (long_text,)) == ["benchmark", "api"]


def test_benchmark_records_survive_any_chunking():
    b = backend()
    data = b"".join(b.api_bytes(BENCH if i % 3 == 0 else f"req {i}") + b.chat_bytes() for i in range(30))
    whole = _sources(data)
    assert whole.count("benchmark") == 10
    rnd = random.Random(7)
    for _ in range(20):
        cut = rnd.randrange(1, len(data))
        first = lf.scan(data[:cut], bench=lf.benchmark_texts((BENCH,)))
        rest = lf.scan(data[first.consumed:], bench=lf.benchmark_texts((BENCH,)))
        got = [e.source for e in first.events + rest.events if isinstance(e, lf.Synthesis)]
        assert got == whole
