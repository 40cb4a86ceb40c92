"""The backend's log format: bytes in, synthesis records and counts out.

Pure functions, no I/O, no SQLAlchemy. The format is the backend's own
(README, "The backend"): Rust ``tracing-subscriber`` 0.3, compact,
ANSI colours on, every key written as ``\\e[3mkey\\e[0m\\e[2m=\\e[0m``::

    \\e[2m2025-09-30T04:22:01.123456Z\\e[0m \\e[32m INFO\\e[0m \\e[1mrequest\\e[0m:\\e[1msynthesize\\e[0m: tts synthesis
    complete target="ishowtts::api::tts" voice_id=walter engine=f5 engine_label=F5 sample_rate=24000
    waveform_len=201600 elapsed_ms=2100 audio_bytes=403244 audio_kb=393.8 text_len=27
    text_preview=欢迎来到我的直播间 \\e[2mmethod=POST uri=/api/tts version=HTTP/1.1\\e[0m

(one physical line when the text holds no newline). The log is untrusted
input: ``text_preview`` is the request text, unquoted, cut at 120
characters plus ``…``, and may hold spaces, ``key=value`` lookalikes, ANSI
sequences and raw newlines. How a record is told from a forgery:

* An event starts at the start of a physical line (or after a ``\\r`` on
  it, where a tqdm bar was redrawn) and its whole header, up to
  ``text_preview=``, must match the fixed field order. No request text
  comes before ``text_preview``, so the header is trusted.
* Where the preview ends is computed, not searched for: ``text_len`` is the
  text's length in UTF-8 bytes, so the preview is either exactly
  ``text_len`` bytes of at most 120 characters (the whole text), or exactly
  120 characters followed by ``…`` (a longer text). For a real line exactly
  one holds, and what follows must be the span fields and the line end.
  Bytes inside the preview, raw newlines and anything after them included,
  belong to the event and are never read as lines of their own.
* A line written from chat text can carry any ``text_len``, so it only
  chooses between the two rules: no rule looks at, or waits for, bytes past
  what a record can hold (``PREVIEW_BYTES``, then ``TAIL_MAX``), and a line
  whose text_len says "cut" (more than ``WHOLE_BYTES``) without a cut
  preview is malformed. Whatever a line says, the reader moves on.
* The live-chat line has no preview; its untrusted part (the requested
  voice and engine) sits between fixed fields, anchored at both ends.

Everything else is counted: WARN and ERROR tracing lines, finished HTTP
requests by status class, backend starts (``backend ready``), and noise
(lines that are not tracing lines: Python prints, tqdm bars, cargo,
onnxruntime). Nothing here raises on any input.
"""
from __future__ import annotations

import calendar
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Optional, Sequence

PREVIEW_CHARS = 120          # the backend cuts text_preview at this many characters ...
ELLIPSIS = "…"               # ... and appends this
SAMPLE_RATE_CHAT = 24000     # the live-chat line has no sample_rate: output is always 24 kHz mono 16-bit
WAV_HEADER = 44
MAX_LINE = 1 << 16           # a physical line longer than this is noise, read in pieces
# What a record can hold, whatever its text_len says: a whole text is at most 120 characters of at
# most 4 bytes, a cut one 120 characters and the ellipsis; the span fields after it fit in TAIL_MAX,
# and its text_preview key comes within MAX_LINE of its line start. So no record needs a byte past
# MAX_LINE + PREVIEW_BYTES + TAIL_MAX from its line start, well inside the smallest batch_bytes
# (128 KiB): a batch that starts at a line always decides the record there.
WHOLE_BYTES = 4 * PREVIEW_CHARS
PREVIEW_BYTES = WHOLE_BYTES + len(ELLIPSIS.encode("utf-8"))
TAIL_MAX = 4096

ESC = b"\x1b"
ANSI_RE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[@-Z\\-_]")
ANSI_STR_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[@-Z\\-_]")

MESSAGE = b"tts synthesis complete"
API_TARGET = "ishowtts::api::tts"
CHAT_TARGET = "ishowtts::danmaku"


COMPILE_FAILED = b"torch.compile() failed"
COMPILE_FALLBACK_LINE = b"[F5TTS] Warning: torch.compile() failed, falling back to eager mode"

def strip_ansi(b: bytes) -> bytes:
    return ANSI_RE.sub(b"", b)


def _k(name: str) -> bytes:
    """A key as the ANSI formatter writes it: italic name, dimmed '='."""
    return re.escape(b"\x1b[3m" + name.encode() + b"\x1b[0m\x1b[2m=\x1b[0m")


_TS = rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z)"
_TOKEN = rb"([^\s\x1b]+)"
_SPANS = rb"(?:\x1b\[1m[A-Za-z_][\w]*\x1b\[0m:)+ "

# The /api/tts line as written, up to and including the text_preview key.
API_HEAD_RE = re.compile(
    rb"\x1b\[2m" + _TS + rb"\x1b\[0m \x1b\[32m INFO\x1b\[0m " + _SPANS + MESSAGE + b" "
    + rb"(?:" + _k("target") + rb'"ishowtts::api::tts" )?'
    + _k("voice_id") + _TOKEN + b" " + _k("engine") + _TOKEN + b" " + _k("engine_label") + _TOKEN + b" "
    + _k("sample_rate") + rb"(\d+) " + _k("waveform_len") + rb"(\d+) " + _k("elapsed_ms") + rb"(\d+) "
    + _k("audio_bytes") + rb"(\d+) " + _k("audio_kb") + rb"([\d.]+) " + _k("text_len") + rb"(\d+) "
    + _k("text_preview"))
# The same without colours (the header is trusted: it holds no request text, so stripping is safe).
API_HEAD_PLAIN_RE = re.compile(
    _TS + rb" +INFO +(?:[A-Za-z_]\w*:)+ " + MESSAGE + rb' (?:target="([^"\s]*)" )?'
    rb"voice_id=(\S+) engine=(\S+) engine_label=(\S+) sample_rate=(\d+) waveform_len=(\d+) "
    rb"elapsed_ms=(\d+) audio_bytes=(\d+) audio_kb=([\d.]+) text_len=(\d+) text_preview=")

# The live-chat line, whole (no preview; requested_* are free text anchored by the fields around them).
CHAT_RE = re.compile(
    rb"\x1b\[2m" + _TS + rb"\x1b\[0m \x1b\[32m INFO\x1b\[0m (?:" + _SPANS + rb")?" + MESSAGE + b" "
    + rb"(?:" + _k("target") + rb'"([^"\s\x1b]*)" )?'
    + _k("channel") + _TOKEN + b" " + _k("user") + _TOKEN + b" " + _k("elapsed_ms") + rb"(\d+) "
    + _k("audio_kb") + rb"([\d.]+) " + _k("audio_bytes") + rb"(\d+) " + _k("requested_voice") + rb"[^\n]* "
    + _k("resolved_voice") + _TOKEN + b" " + _k("resolved_engine") + _TOKEN + b" " + _k("engine_label") + _TOKEN
    + rb"(?: \x1b\[2m[^\n]*\x1b\[0m)?")
CHAT_PLAIN_RE = re.compile(
    _TS + rb" +INFO +(?:(?:[A-Za-z_]\w*:)+ )?" + MESSAGE + rb' (?:target="([^"\s]*)" )?'
    rb"channel=(\S+) user=(\S+) elapsed_ms=(\d+) audio_kb=([\d.]+) audio_bytes=(\d+) requested_voice=.* "
    rb"resolved_voice=(\S+) resolved_engine=(\S+) engine_label=(\S+)(?: [A-Za-z_]\w*=\S*)*")

# The span fields that end an /api/tts line, after the preview: " \e[2m" fields "\e[0m", per span.
_TAIL_PLAIN_RE = re.compile(rb"(?: [A-Za-z_][\w.]*=[^\s\x1b]*)*")
_TAIL_FIELD = rb"\x1b\[3m[A-Za-z_][\w.]*\x1b\[0m\x1b\[2m=\x1b\[0m[^\s\x1b]*"
_TAIL_ANSI_RE = re.compile(rb"(?: \x1b\[2m" + _TAIL_FIELD + rb"(?: " + _TAIL_FIELD + rb")*\x1b\[0m)*")

# A tracing line: timestamp then level, with or without colours.
TRACE_START_RE = re.compile(rb"(?:\x1b\[2m)?" + _TS + rb"(?:\x1b\[0m)? +(?:\x1b\[\d+m)? *(INFO|WARN|ERROR|DEBUG|TRACE)(?:\x1b\[0m)? ")
# Where the message of a tracing line starts (after optional span names).
_SPAN_PREFIX_RE = re.compile(rb"(?:(?:\x1b\[1m)?[A-Za-z_]\w*(?:\x1b\[0m)?:)*\s*")

# Lines that are not tracing lines (the match includes the leading newline).
NOISE_RE = re.compile(rb"\n(?:[^\x1b\d\n]|\x1b(?!\[2m\d)|\d(?!\d\d\d-\d\d-\d\dT))[^\n]*|\n(?=\n)")
# A finished HTTP request: the status's first digit.
STATUS_RE = re.compile(rb"y\x1b\[0m\x1b\[2m=\x1b\[0m\d+ ms \x1b\[3mstatus\x1b\[0m\x1b\[2m=\x1b\[0m(\d)\d\d\b")
STATUS_PLAIN_RE = re.compile(rb"finished processing request latency=\d+ ms status=(\d)\d\d\b")
ERROR_WORDS_RE = re.compile(r"error|exception|failed", re.IGNORECASE)
READY = b"backend ready"
WARN_TOKENS = (b"\x1b[33m WARN\x1b[0m ", b"\x1b[31mERROR\x1b[0m ", b"Z  WARN ", b"Z ERROR ")

DEFAULT_IGNORE = ("GPU device discovery failed",)


class Synthesis(NamedTuple):
    """One finished synthesis as the log tells it."""
    pos: int              # where its line starts: an index into the scanned buffer
    ts_us: int            # UTC, microseconds since the epoch
    source: str           # "api", "chat", or "benchmark" (an /api/tts request of the benchmark job)
    engine: str
    voice: str
    elapsed_ms: int
    audio_seconds: float
    rtf: Optional[float]  # None when the audio is empty


_new = tuple.__new__


class Start(NamedTuple):
    pos: int
    ts_us: Optional[int]


@dataclass
class ScanResult:
    consumed: int                     # bytes of the buffer fully decided (always ends at a line end)
    events: list = field(default_factory=list)   # Synthesis and Start, in file order
    counts: dict = field(default_factory=dict)   # (kind, label) -> n
    skip_line: bool = False           # the consumed bytes end inside an overlong line

    def add(self, kind: str, label: str, n: int = 1) -> None:
        if n:
            key = (kind, label)
            self.counts[key] = self.counts.get(key, 0) + n


# --- small parsers ------------------------------------------------------------

_DAYS: dict[bytes, int] = {}
_fromiso, _EPOCH, _US = datetime.fromisoformat, datetime(1970, 1, 1), timedelta(microseconds=1)


def parse_ts(b: bytes) -> Optional[int]:
    """``2025-09-30T04:22:01.123456Z`` -> microseconds since the epoch (UTC), None if invalid."""
    if len(b) == 27:        # the backend's own form: C-speed parsing (a leap second takes the long way)
        try:
            return (_fromiso(b[:26].decode("ascii")) - _EPOCH) // _US
        except (ValueError, UnicodeDecodeError):
            pass
    try:
        day = b[:10]
        base = _DAYS.get(day)
        if base is None:
            y, mo, d = int(b[0:4]), int(b[5:7]), int(b[8:10])
            datetime(y, mo, d)  # validates
            base = calendar.timegm((y, mo, d, 0, 0, 0))
            if len(_DAYS) > 4096:
                _DAYS.clear()
            _DAYS[day] = base
        h, mi, s = int(b[11:13]), int(b[14:16]), int(b[17:19])
        if h > 23 or mi > 59 or s > 60:
            return None
        frac = b[20:-1]
        us = int((frac + b"000000")[:6]) if frac else 0
        return (base + h * 3600 + mi * 60 + s) * 1_000_000 + us
    except (ValueError, OverflowError):
        return None


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


_NAMES: dict[bytes, str] = {}


def _name(b: bytes) -> str:
    """A voice or engine name (few distinct ones): decoded once."""
    got = _NAMES.get(b)
    if got is None:
        if len(_NAMES) > 1024:
            _NAMES.clear()
        got = _NAMES[b] = b.decode("utf-8", "replace")
    return got


def _rtf(elapsed_ms: int, audio_seconds: float) -> Optional[float]:
    return elapsed_ms / 1000.0 / audio_seconds if audio_seconds > 0 else None


def _tail_ok(tail: bytes) -> bool:
    """The span fields after the preview (possibly none), up to the line end."""
    if not tail:
        return True
    if tail in _TAILS_SEEN:
        return True
    ok = _TAIL_ANSI_RE.fullmatch(tail) is not None or _TAIL_PLAIN_RE.fullmatch(tail) is not None
    if ok and len(_TAILS_SEEN) < 256:
        _TAILS_SEEN.add(tail)
    return ok


_TAILS_SEEN: set[bytes] = set()


# --- the /api/tts event ------------------------------------------------------------

NEED_MORE = -2
INVALID = -1
ELLIPSIS_B = ELLIPSIS.encode("utf-8")
_ELLIPSIS_TAIL = ELLIPSIS_B + b" \x1b[2m"
# translate(None, this) keeps only UTF-8 continuation bytes: characters = bytes - continuation bytes
_NOT_CONTINUATION = bytes(b for b in range(256) if not 0x80 <= b <= 0xBF)


def _preview_end(buf, m: int, text_len: int, end: int, final: bool) -> tuple[int, int]:
    """Place the end of the preview starting at ``m``; returns (status, line end).

    status is the preview's end (a position) when the text_len rule places it
    and the span fields and a newline follow; NEED_MORE when the bytes up to
    ``end`` do not decide it yet; INVALID when neither rule fits. ``final``:
    no byte past ``end`` can change the answer. Every byte looked at lies
    before ``m + PREVIEW_BYTES + TAIL_MAX + 1``.
    """
    if text_len > PREVIEW_CHARS:
        # The usual long text first: 120 characters, the ellipsis, then the span fields on the same line.
        stop = min(end, m + PREVIEW_BYTES + len(_ELLIPSIS_TAIL))
        e = buf.find(_ELLIPSIS_TAIL, m, stop)
        while e >= 0:
            seg = bytes(buf[m:e])
            if len(seg) - len(seg.translate(None, _NOT_CONTINUATION)) == PREVIEW_CHARS:
                p = e + len(ELLIPSIS_B)
                nl = buf.find(b"\n", p, min(end, p + TAIL_MAX + 1))
                if nl >= 0 and _tail_ok(bytes(buf[p:nl])):
                    try:
                        seg.decode("utf-8")
                        return p, nl
                    except UnicodeDecodeError:
                        pass
                break
            e = buf.find(_ELLIPSIS_TAIL, e + 1, stop)
    more = False
    candidates = []
    if text_len > PREVIEW_CHARS:
        # B: 120 characters and the ellipsis.
        window = bytes(buf[m:min(end, m + PREVIEW_BYTES)])
        s = window.decode("utf-8", "surrogateescape")
        if len(s) > PREVIEW_CHARS:
            head = s[:PREVIEW_CHARS + 1]
            if head[-1] == ELLIPSIS:
                try:
                    candidates.append(m + len(head.encode("utf-8")))  # strict: no undecodable bytes
                except UnicodeEncodeError:
                    pass
        elif m + PREVIEW_BYTES > end and not final:
            more = True
    if text_len <= WHOLE_BYTES:
        # A: exactly text_len bytes, at most 120 characters (a longer text_len can only mean B).
        p = m + text_len
        try:
            if len(bytes(buf[m:min(p, end)]).decode("utf-8")) <= PREVIEW_CHARS:
                if p <= end:
                    candidates.append(p)
                elif not final:
                    more = True         # (and once 120 characters are there without it, no more)
        except UnicodeDecodeError:
            pass
    for p in candidates:
        nl = buf.find(b"\n", p, min(end, p + TAIL_MAX + 1))
        if nl < 0:
            if not final and end <= p + TAIL_MAX:
                more = True
            continue
        if _tail_ok(bytes(buf[p:nl])):
            return p, nl
    return (NEED_MORE if more else INVALID), -1


def _preview_fast(buf, m: int, text_len: int, end: int) -> int:
    """The end of the preview at ``m`` where the common cases place it beyond doubt, else -1.

    A shortcut through :func:`_preview_end` (which decides every case, and the
    same way): a text of at most 120 bytes is whole; a longer one is either
    cut (120 characters, then ``… \\e[2m`` and the span fields) or, with no
    ellipsis anywhere it could be, whole (CJK text: 3 bytes a character).
    """
    if text_len <= PREVIEW_CHARS:
        return m + text_len
    window_end = m + PREVIEW_BYTES      # (the buffer past ``end`` holds stale bytes)
    e = buf.find(_ELLIPSIS_TAIL, m, min(end, window_end + len(_ELLIPSIS_TAIL)))
    try:
        if e >= 0:
            return e + len(ELLIPSIS_B) if len(buf[m:e].decode("utf-8")) == PREVIEW_CHARS else -1
        if text_len > WHOLE_BYTES or window_end > end or buf.find(ELLIPSIS_B, m, window_end) >= 0:
            return -1
        p = m + text_len
        return p if len(buf[m:p].decode("utf-8")) <= PREVIEW_CHARS else -1
    except UnicodeDecodeError:
        return -1


# --- the benchmark's own requests --------------------------------------------------------

# The benchmark job sends a fixed text over /api/tts; its records land in the log as any client's.
# They are told apart by that text where the parser has already placed the preview: its text_len
# (in the record's trusted header) is the text's, and the preview is exactly the text, so a
# viewer's message that merely contains the sentence stays production. A lookup per record.

def benchmark_texts(texts: Sequence[str]) -> dict:
    """What ``scan_buffer(bench=...)`` takes: {text_len as logged: the previews as logged}."""
    out: dict = {}
    for text in texts:
        if text:
            cut = text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + ELLIPSIS
            key = str(len(text.encode("utf-8"))).encode()
            out[key] = out.get(key, ()) + (cut.encode("utf-8"),)
    return out


def _api_source(buf, tl: bytes, start: int, stop: int, bench: dict) -> str:
    """"benchmark" when the preview ``buf[start:stop]`` is one of the benchmark's texts, else "api"."""
    previews = bench.get(tl) if bench else None
    return "benchmark" if previews and buf[start:stop] in previews else "api"


def _api_event(buf, ls: int, line_start: int, h: int, end: int, avail: int, final: bool, mt=None,
               bench: Optional[dict] = None):
    """Parse the /api/tts event that starts at ``ls``, on the physical line that starts at
    ``line_start``. Returns (Synthesis|None, span end|status).

    ``end``: the end of the whole lines; ``avail``: the end of the bytes read (the rest of a line
    whose newline is yet to come). ``mt``: ``API_HEAD_RE`` matched at ``ls`` already (the scan tries
    it first).
    """
    if mt is None:
        mt = API_HEAD_RE.match(buf, ls)
    if mt is not None:
        ts_b, voice, engine, _label, sr, wl, ms, ab, _kb, tl = mt.groups()
        marker_end = mt.end()
        if marker_end - line_start > MAX_LINE:
            return None, INVALID
        text_len = int(tl)
        p = _preview_fast(buf, marker_end, text_len, end)
        if 0 <= p < end:
            # The common case: the preview placed, then the span fields and the line end.
            # (A cut inside a character would leave a continuation byte where the tail must start.)
            nl = buf.find(b"\n", p, min(end, p + TAIL_MAX + 1))
            if nl >= 0:
                tail = bytes(buf[p:nl])
                if tail in _TAILS_SEEN or _tail_ok(tail):
                    ts = parse_ts(ts_b)
                    sample_rate, waveform_len, elapsed = int(sr), int(wl), int(ms)
                    if ts is not None and sample_rate > 0:
                        audio = waveform_len / sample_rate
                        # tuple.__new__: the NamedTuple's own constructor is a Python function, twice as slow
                        return _new(Synthesis, (ls, ts, _api_source(buf, tl, marker_end, p, bench),
                                                _NAMES.get(engine) or _name(engine),
                                                _NAMES.get(voice) or _name(voice), elapsed, audio,
                                                elapsed / 1000.0 / audio if audio > 0 else None)), nl + 1
        g = (ts_b, None, voice, engine, _label, sr, wl, ms, ab, _kb, tl)
    else:
        # A variant (no colours, other spacing): strip ANSI from the trusted header and match it plainly.
        k = buf.find(b"text_preview", h, min(end, h + 2048))
        if k < 0:
            return None, INVALID
        eq = buf.find(b"=", k, k + 32)
        if eq < 0:
            return None, INVALID
        marker_end = eq + 1
        if buf[marker_end:marker_end + 4] == b"\x1b[0m":
            marker_end += 4
        if marker_end - line_start > MAX_LINE:
            return None, INVALID
        mp = API_HEAD_PLAIN_RE.fullmatch(strip_ansi(bytes(buf[ls:marker_end])))
        if mp is None:
            return None, INVALID
        g = mp.groups()
    ts_b, target, voice, engine, _label, sr, wl, ms, ab, _kb, tl = g
    if target is not None and target.decode("ascii", "replace") != API_TARGET:
        return None, INVALID
    ts = parse_ts(ts_b)
    sample_rate, waveform_len, elapsed, text_len = int(sr), int(wl), int(ms), int(tl)
    if ts is None or sample_rate <= 0:
        return None, INVALID
    # Once the bytes read reach past all a record can hold, what is not there yet cannot matter:
    # the lines end before it and the rest, up to avail, holds no newline.
    final = final or avail > marker_end + PREVIEW_BYTES + TAIL_MAX
    p, nl = _preview_end(buf, marker_end, text_len, end, final)
    if p == NEED_MORE:
        return None, NEED_MORE
    if p == INVALID:
        if text_len > WHOLE_BYTES:
            return None, INVALID        # it says its preview was cut, and it was not
        # The text_len rule does not fit (another backend version?): accept the event only when it
        # is one physical line that ends with span fields, and never swallow the lines after it.
        nl = buf.find(b"\n", marker_end, end)
        if nl < 0:
            return None, (NEED_MORE if not final else INVALID)
        line_tail = bytes(buf[marker_end:nl])
        cut = line_tail.rfind(b" \x1b[2m\x1b[3m")
        if cut < 0 or not _TAIL_ANSI_RE.fullmatch(line_tail[cut:]):
            return None, INVALID
    audio = waveform_len / sample_rate
    source = _api_source(buf, tl, marker_end, p, bench) if p >= 0 else "api"
    ev = Synthesis(ls, ts, source, _name(engine), _name(voice), elapsed, audio, _rtf(elapsed, audio))
    return ev, nl + 1


def _chat_event(buf, ls: int, nl: int):
    """Parse the live-chat event that is the line ``buf[ls:nl]``."""
    mt = CHAT_RE.fullmatch(buf, ls, nl)
    if mt is None:
        mt = CHAT_PLAIN_RE.fullmatch(strip_ansi(bytes(buf[ls:nl])))
        if mt is None:
            return None
    ts_b, target, _channel, _user, ms, _kb, ab, voice, engine, _label = mt.groups()
    if target is not None and target.decode("ascii", "replace") != CHAT_TARGET:
        return None
    ts = parse_ts(ts_b)
    if ts is None:
        return None
    elapsed, audio_bytes = int(ms), int(ab)
    audio = max(0, audio_bytes - WAV_HEADER) / 2 / SAMPLE_RATE_CHAT
    return _new(Synthesis, (ls, ts, "chat", _NAMES.get(engine) or _name(engine), _NAMES.get(voice) or _name(voice),
                            elapsed, audio, _rtf(elapsed, audio)))


# --- the scan ------------------------------------------------------------------------

def _events(buf, start: int, end: int, avail: int, final: bool, res: ScanResult, bench: Optional[dict] = None):
    """Find synthesis events in [start, end) (whole lines; the bytes read go on to ``avail``).

    Returns (spans, stop): spans are (line start, end of its first line, event end), and stop < end
    when an event there cannot be decided yet. Every synthesis line holds an underscore (its keys
    do) and request lines hold none, so candidates are found with memchr.
    """
    spans: list[tuple[int, int, int]] = []
    events = res.events
    cursor = start
    find, rfind, api_head = buf.find, buf.rfind, API_HEAD_RE.match
    while True:
        u = find(b"_", cursor, end)
        if u < 0:
            return spans, end
        ls = rfind(b"\n", cursor - 1, u) + 1
        nl = find(b"\n", u, end)
        if nl < 0:
            nl = end  # only when final: the buffer was given a trailing newline otherwise
        mt = api_head(buf, ls)
        if mt is not None:          # the usual /api/tts line: straight to it
            ev, span_end = _api_event(buf, ls, ls, -1, end, avail, final, mt, bench)
            if ev is not None:
                events.append(ev)
                spans.append((ls, nl + 1, span_end))
                cursor = span_end
                continue
            if span_end == NEED_MORE:
                return spans, ls
        else:
            ev = _chat_event(buf, ls, nl)   # the live-chat line: one line, nothing untrusted after it
            if ev is not None:
                events.append(ev)
                spans.append((ls, nl + 1, nl + 1))
                cursor = nl + 1
                continue
        h = find(MESSAGE, ls, nl)
        if h < 0:
            cursor = nl + 1
            continue
        starts = [ls]
        cr = rfind(b"\r", ls, h)
        if cr >= 0:
            starts.append(cr + 1)  # a tqdm bar redrawn with \r, then the event on the same line
        ev, span_end = None, INVALID
        api = find(b"text_preview", h, nl) >= 0     # the chat line has none (but its free text might)
        for s in starts:
            if api:
                ev, span_end = _api_event(buf, s, ls, h, end, avail, final, bench=bench)
                if ev is not None or span_end == NEED_MORE:
                    break
            ev = _chat_event(buf, s, nl)
            if ev is not None:
                span_end = nl + 1
                break
        if span_end == NEED_MORE:
            return spans, ls
        if ev is None:
            # Not a record. A tracing line that says "tts synthesis complete" but does not parse is
            # malformed; anything else (noise) is counted with the other lines.
            if TRACE_START_RE.match(buf, ls) is not None:
                res.add("lines", "malformed")
                spans.append((ls, nl + 1, nl + 1))
            cursor = nl + 1
            continue
        events.append(ev)
        spans.append((ls, nl + 1, span_end))
        cursor = span_end


def _tracing_level(line: bytes) -> Optional[tuple[bytes, bytes]]:
    """(level, message and fields) of a tracing line, or None."""
    m = TRACE_START_RE.match(line)
    if m is None:
        return None
    rest = line[m.end():]
    rest = rest[_SPAN_PREFIX_RE.match(rest).end():]
    return m.group(2), rest


def _lines_with(buf, byte: bytes, start: int, end: int, spans, span_starts):
    """(start, end) of each line outside the events that holds ``byte`` (memchr speed)."""
    find, rfind = buf.find, buf.rfind
    i = find(byte, start, end)
    while i >= 0:
        k = bisect_right(span_starts, i) - 1
        if k >= 0 and i < spans[k][2]:
            i = find(byte, spans[k][2], end)
            continue
        ls = rfind(b"\n", start - 1, i) + 1
        nl = find(b"\n", i, end)
        if nl < 0:
            nl = end
        yield ls, nl
        i = find(byte, nl + 1, end)


def _count_levels(buf, start: int, end: int, spans, res: ScanResult, ignore: Sequence[re.Pattern]) -> list:
    """WARN and ERROR tracing lines, and backend starts ('backend ready'), outside the events."""
    span_starts = [sp[0] for sp in spans]
    starts = []
    # "R" is in both " WARN" and "ERROR" (one memchr pass for the two); request lines hold none
    for ls, nl in _lines_with(buf, b"R", start, end, spans, span_starts):
        line = bytes(buf[ls:nl])
        cr = line.rfind(b"\r")
        if cr >= 0:
            line = line[cr + 1:]
        lv = _tracing_level(line)
        if lv is not None and lv[0] in (b"WARN", b"ERROR"):
            text = _text(strip_ansi(line))
            if not any(p.search(text) for p in ignore):
                res.add("errors", lv[0].decode().lower())
    # F5-TTS's own print when compilation fails: a whole line of its own, outside any record (a
    # preview holding the words, raw newline or not, is inside its record's span and never counts)
    for ls, nl in _lines_with(buf, COMPILE_FAILED, start, end, spans, span_starts):
        line = bytes(buf[ls:nl])
        cr = line.rfind(b"\r")
        if strip_ansi(line[cr + 1:]).startswith(COMPILE_FALLBACK_LINE):
            res.add("compile", "fallback")
    for ls, nl in _lines_with(buf, b"k", start, end, spans, span_starts):   # "backend ready"
        line = bytes(buf[ls:nl])
        lv = _tracing_level(line)
        if lv is not None and lv[1].startswith(READY):
            m = TRACE_START_RE.match(line)
            starts.append(Start(ls, parse_ts(m.group(1)) if m else None))
            res.add("starts", "")
    return starts


def _noise_lines(buf, start: int, end: int) -> list:
    return NOISE_RE.findall(buf, start - 1, end)


def _error_lines(lines: list, ignore: Sequence[re.Pattern]) -> int:
    """How many of these noise lines report an error (error / exception / failed), less the ignored."""
    low = b"".join(lines).lower()     # each line starts with its newline
    hits = set()
    for word in (b"error", b"exception", b"failed"):
        i = low.find(word)
        while i >= 0:
            hits.add(low.rfind(b"\n", 0, i))
            i = low.find(word, i + 1)
    if not hits:
        return 0
    joined = b"".join(lines)
    n = 0
    for ls in hits:
        nl = joined.find(b"\n", ls + 1)
        text = _text(strip_ansi(joined[ls + 1:nl if nl >= 0 else len(joined)]))
        if not any(p.search(text) for p in ignore):
            n += 1
    return n


def _status_digits(buf, start: int, end: int, plain: bool) -> list:
    return (STATUS_PLAIN_RE if plain else STATUS_RE).findall(buf, start, end)


def scan_buffer(buf, start: int, end: int, *, final: bool, skip_line: bool = False,
                ignore: Sequence[re.Pattern] = (), bench: Optional[dict] = None) -> ScanResult:
    """Scan ``buf[start:end]``, which begins at a line start; ``buf[start-1]`` must exist (a newline).

    Event positions are indexes into ``buf``. Only whole lines are
    consumed unless ``final`` (the file will not grow: a rotated file read
    to its end). ``skip_line``: the first line continues an overlong line
    already counted. ``bench``: the benchmark's texts (``benchmark_texts``); their records get
    ``source="benchmark"``.
    """
    res = ScanResult(0)
    given_end = end
    stop = buf.rfind(b"\n", start, end) + 1
    first = start
    if skip_line:
        nl = buf.find(b"\n", start, end)
        if nl < 0:
            res.consumed = end - start if (end - start >= MAX_LINE or final) else 0
            res.skip_line = not final
            return res
        first = nl + 1
    if final and stop < end:
        # the last line has no newline and never will: scan it as a line of its own
        buf = bytearray(buf[:end]) + b"\n"
        end += 1
        stop = end
    if stop <= first:
        if end - first >= MAX_LINE:  # one overlong line with no newline yet: noise, read in pieces
            res.add("lines", "noise")
            res.consumed = end - start
            res.skip_line = True
        else:
            res.consumed = first - start
        return res
    spans, decided = _events(buf, first, stop, end, final, res, bench)
    res.add("lines", "synthesis", len(res.events))
    # Noise: one pass over everything; the continuation lines of multi-line previews are taken back.
    lines = _noise_lines(buf, first, decided)
    taken_back = []
    for s, first_end, e in spans:
        if e > first_end:
            taken_back += _noise_lines(buf, first_end, e)
    res.add("lines", "noise", len(lines) - len(taken_back))
    res.add("errors", "other", _error_lines(lines, ignore) - _error_lines(taken_back, ignore))
    # Finished requests by status class: one pass; a preview that looks like one is taken back.
    digits = _status_digits(buf, first, decided, False)
    plain = not digits
    if plain:
        digits = _status_digits(buf, first, decided, True)
    if digits:
        for s, _first_end, e in spans:
            if buf.find(b"status", s, e) >= 0:
                for d in _status_digits(buf, s, e, plain):
                    digits.remove(d)
        for digit in set(digits):
            res.add("http", digit.decode() + "xx", digits.count(digit))
    starts = _count_levels(buf, first, decided, spans, res, ignore)
    if starts:
        res.events = sorted(res.events + starts, key=lambda ev: ev.pos)
    res.consumed = min(decided, given_end) - start
    return res


def scan(data: bytes, *, final: bool = False, skip_line: bool = False,
         ignore: Sequence[re.Pattern] = (), bench: Optional[dict] = None) -> ScanResult:
    """Scan ``data`` (which begins at a line start) — the convenient form for tests and tools."""
    buf = b"\n" + bytes(data)
    return scan_buffer(buf, 1, len(buf), final=final, skip_line=skip_line, ignore=ignore, bench=bench)


def compile_ignore(patterns: Sequence[str]) -> list[re.Pattern]:
    return [re.compile(p) for p in patterns]
