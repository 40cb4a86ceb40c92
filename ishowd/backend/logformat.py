"""The backend's log format: bytes in, synthesis records and counts out.

Pure functions, no I/O, no SQLAlchemy. The format is the one
``docs/ishowtts-facts.md`` gives: Rust ``tracing-subscriber`` 0.3, compact,
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
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, Optional, Sequence

PREVIEW_CHARS = 120          # the backend cuts text_preview at this many characters ...
ELLIPSIS = "…"               # ... and appends this
SAMPLE_RATE_CHAT = 24000     # the live-chat line has no sample_rate: output is always 24 kHz mono 16-bit
WAV_HEADER = 44
MAX_LINE = 1 << 16           # a physical line longer than this is noise, read in pieces
LOOKAHEAD = 4 * (PREVIEW_CHARS + 1) + 4096   # bytes past the preview start enough to place its end

ESC = b"\x1b"
ANSI_RE = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b[@-Z\\-_]")
ANSI_STR_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[@-Z\\-_]")

MESSAGE = b"tts synthesis complete"
API_TARGET = "ishowtts::api::tts"
CHAT_TARGET = "ishowtts::danmaku"


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
    + rb"(?:" + _k("target") + rb'"([^"\s\x1b]*)" )?'
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
    pos: int              # where its line starts, relative to the scanned buffer's data
    ts_us: int            # UTC, microseconds since the epoch
    source: str           # "api" or "chat"
    engine: str
    voice: str
    elapsed_ms: int
    audio_seconds: float
    rtf: Optional[float]  # None when the audio is empty


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


def parse_ts(b: bytes) -> Optional[int]:
    """``2025-09-30T04:22:01.123456Z`` -> microseconds since the epoch (UTC), None if invalid."""
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


def _preview_end(buf, m: int, text_len: int, end: int, final: bool) -> tuple[int, int]:
    """Place the end of the preview starting at ``m``; returns (status, line end).

    status is the preview's end (a position) when the text_len rule places it
    and the span fields and a newline follow; NEED_MORE when the bytes up to
    ``end`` do not decide it yet; INVALID when neither rule fits.
    """
    more = False
    candidates = []
    if text_len > PREVIEW_CHARS:
        # B: 120 characters and the ellipsis.
        window = bytes(buf[m:min(end, m + 4 * PREVIEW_CHARS + 3)])
        s = window.decode("utf-8", "surrogateescape")
        if len(s) > PREVIEW_CHARS:
            head = s[:PREVIEW_CHARS + 1]
            if head[-1] == ELLIPSIS:
                try:
                    candidates.append(m + len(head.encode("utf-8")))  # strict: no undecodable bytes
                except UnicodeEncodeError:
                    pass
        elif m + 4 * PREVIEW_CHARS + 3 > end and not final:
            more = True
    # A: exactly text_len bytes, at most 120 characters.
    p = m + text_len
    if p <= end:
        try:
            if len(bytes(buf[m:p]).decode("utf-8")) <= PREVIEW_CHARS:
                candidates.append(p)
        except UnicodeDecodeError:
            pass
    elif not final:
        more = True
    for p in candidates:
        nl = buf.find(b"\n", p, end)
        if nl < 0:
            if not final:
                more = True
            continue
        if _tail_ok(bytes(buf[p:nl])):
            return p, nl
    return (NEED_MORE if more else INVALID), -1


def _api_event(buf, ls: int, h: int, end: int, final: bool):
    """Parse the /api/tts event whose line starts at ``ls``. Returns (Synthesis|None, span end|status)."""
    mt = API_HEAD_RE.match(buf, ls)
    if mt is not None and mt.start(0) == ls:
        g = mt.groups()
        marker_end = mt.end()
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
    p, nl = _preview_end(buf, marker_end, text_len, end, final)
    if p == NEED_MORE:
        return None, NEED_MORE
    if p == INVALID:
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
    ev = Synthesis(ls, ts, "api", _text(engine), _text(voice), elapsed, audio, _rtf(elapsed, audio))
    return ev, nl + 1


def _chat_event(line: bytes, ls: int):
    mt = CHAT_RE.fullmatch(line)
    if mt is None:
        mt = CHAT_PLAIN_RE.fullmatch(strip_ansi(line))
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
    return Synthesis(ls, ts, "chat", _text(engine), _text(voice), elapsed, audio, _rtf(elapsed, audio))


def _is_chat(buf, h: int, nl: int) -> bool:
    return buf.find(b"danmaku", h, min(nl, h + 128)) >= 0 or buf.find(b"channel", h, min(nl, h + 128)) >= 0


# --- the scan ------------------------------------------------------------------------

def _line_bounds(buf, i: int, start: int, end: int) -> tuple[int, int]:
    ls = buf.rfind(b"\n", start - 1, i) + 1
    nl = buf.find(b"\n", i, end)
    return max(ls, start), (nl if nl >= 0 else end)


def _events(buf, start: int, end: int, final: bool, res: ScanResult):
    """Find synthesis events in [start, end). Returns (spans, stop) where stop < end when undecided."""
    spans: list[tuple[int, int]] = []
    cursor = start
    find = buf.find
    while True:
        h = find(MESSAGE, cursor, end)
        if h < 0:
            return spans, end
        ls = buf.rfind(b"\n", cursor - 1, h) + 1
        if ls < cursor:
            ls = cursor
        nl = find(b"\n", h, end)
        if nl < 0:
            nl = end  # only when final: the buffer was given a trailing newline otherwise
        starts = [ls]
        cr = buf.rfind(b"\r", ls, h)
        if cr >= 0:
            starts.append(cr + 1)  # a tqdm bar redrawn with \r, then the event on the same line
        ev, span_end = None, INVALID
        for s in starts:
            if _is_chat(buf, h, nl):
                ev = _chat_event(bytes(buf[s:nl]), s)
                span_end = nl + 1 if ev is not None else INVALID
            else:
                ev, span_end = _api_event(buf, s, h, end, final)
            if ev is not None or span_end == NEED_MORE:
                break
        if span_end == NEED_MORE:
            return spans, ls
        if ev is None:
            # Not a record. A tracing line that says "tts synthesis complete" but does not parse is
            # malformed; anything else (noise) is counted with the other lines.
            if TRACE_START_RE.match(buf, ls) is not None:
                res.add("lines", "malformed")
                spans.append((ls, nl + 1))
            cursor = nl + 1
            continue
        if ev.pos != ls:
            res.add("lines", "noise")  # the bar before the \r
        res.events.append(ev)
        res.add("lines", "synthesis")
        spans.append((ls, span_end))
        cursor = span_end


def _tracing_level(line: bytes) -> Optional[tuple[bytes, bytes]]:
    """(level, message and fields) of a tracing line, or None."""
    m = TRACE_START_RE.match(line)
    if m is None:
        return None
    rest = line[m.end():]
    rest = rest[_SPAN_PREFIX_RE.match(rest).end():]
    return m.group(2), rest


def _count_errors(buf, start: int, end: int, res: ScanResult, ignore: Sequence[re.Pattern],
                  events: list) -> None:
    """WARN/ERROR tracing lines and backend starts in [start, end) (a segment outside events)."""
    seen = set()
    for token in WARN_TOKENS:
        i = buf.find(token, start, end)
        while i >= 0:
            ls, nl = _line_bounds(buf, i, start, end)
            if ls not in seen:
                seen.add(ls)
                line = bytes(buf[ls:nl])
                cr = line.rfind(b"\r")
                if cr >= 0:
                    line = line[cr + 1:]
                lv = _tracing_level(line)
                if lv is not None and lv[0] in (b"WARN", b"ERROR"):
                    text = _text(strip_ansi(line))
                    if not any(p.search(text) for p in ignore):
                        res.add("errors", lv[0].decode().lower())
            i = buf.find(token, nl, end)
    i = buf.find(READY, start, end)
    while i >= 0:
        ls, nl = _line_bounds(buf, i, start, end)
        lv = _tracing_level(bytes(buf[ls:nl]))
        if lv is not None and lv[1].startswith(READY):
            m = TRACE_START_RE.match(buf, ls)
            events.append(Start(ls, parse_ts(m.group(1)) if m else None))
            res.add("starts", "")
        i = buf.find(READY, nl, end)


def _count_noise(buf, start: int, end: int, res: ScanResult, ignore: Sequence[re.Pattern]) -> None:
    """Lines that are not tracing lines in [start, end), and those among them that report an error."""
    lines = NOISE_RE.findall(buf, start - 1, end)
    if not lines:
        return
    res.add("lines", "noise", len(lines))
    low = b"".join(lines).lower()
    if b"error" not in low and b"exception" not in low and b"failed" not in low:
        return
    for line in lines:
        text = _text(strip_ansi(line[1:]))
        if ERROR_WORDS_RE.search(text) and not any(p.search(text) for p in ignore):
            res.add("errors", "other")


def _count_status(buf, start: int, end: int, res: ScanResult) -> None:
    found = STATUS_RE.findall(buf, start, end)
    if not found:
        found = STATUS_PLAIN_RE.findall(buf, start, end)
    if found:
        for digit in set(found):
            res.add("http", digit.decode() + "xx", found.count(digit))


def scan_buffer(buf, start: int, end: int, *, final: bool, skip_line: bool = False,
                ignore: Sequence[re.Pattern] = ()) -> ScanResult:
    """Scan ``buf[start:end]``, which begins at a line start; ``buf[start-1]`` must exist (a newline).

    Positions in the result are relative to ``start``. Only whole lines are
    consumed unless ``final`` (the file will not grow: a rotated file read
    to its end). ``skip_line``: the first line continues an overlong line
    already counted.
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
    spans, decided = _events(buf, first, stop, final, res)
    pos = first
    starts: list = []
    for s, e in spans + [(decided, decided)]:
        if s > pos:
            _count_noise(buf, pos, s, res, ignore)
            _count_errors(buf, pos, s, res, ignore, starts)
            _count_status(buf, pos, s, res)
        pos = max(pos, e)
    if starts:
        res.events = sorted(res.events + starts, key=lambda ev: ev.pos)
    res.events = [ev._replace(pos=ev.pos - start) for ev in res.events]
    res.consumed = min(decided, given_end) - start
    return res


def scan(data: bytes, *, final: bool = False, skip_line: bool = False,
         ignore: Sequence[re.Pattern] = ()) -> ScanResult:
    """Scan ``data`` (which begins at a line start) — the convenient form for tests and tools."""
    buf = b"\n" + bytes(data)
    return scan_buffer(buf, 1, len(buf), final=final, skip_line=skip_line, ignore=ignore)


def compile_ignore(patterns: Sequence[str]) -> list[re.Pattern]:
    return [re.compile(p) for p in patterns]
