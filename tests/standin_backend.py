"""A stand-in for the iShowTTS backend: a real HTTP server and a real log file.

It answers ``GET /api/health``, ``GET /api/voices`` and ``POST /api/tts`` on
127.0.0.1 as the real backend does (README, "The backend") and writes the
real log format, ANSI colours included, to a real file it opens with
O_APPEND, truncating it at every start the way ``start_all.sh`` does
(``: > logs/backend.log``). Tests also use its line formatters directly to
write large logs quickly, and to plant noise and hostile text.

Every synthesis it logs is remembered in ``emitted`` (as the record ishowd
should make of it), so a test can compare the store with the truth.

Its ``POST /api/tts`` behaves as F5 does for a client that times it (the
benchmark): one synthesis at a time (a lock), each really taking ``rtf x audio
seconds`` (``synth_work``, a sleep by default; a device script can hand in a
function doing real GPU work instead), ``elapsed_ms`` logged as measured, and a
whole WAV of ``waveform_len`` samples. ``rtfs`` and ``modes`` are per-request
schedules (a list consumed in order, or a function of the request's number);
the modes break the answer the ways a client must notice: ``bad_wav`` (a header
that disagrees with ``waveform_len``), ``broken_audio`` (not a RIFF file),
``not_base64``, ``fail`` (502). Every request received is kept in ``requests``.
"""
from __future__ import annotations

import base64
import json
import os
import struct
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

E = "\x1b"
INFO = f"{E}[32m INFO{E}[0m"
WARN = f"{E}[33m WARN{E}[0m"
ERROR = f"{E}[31mERROR{E}[0m"
LEVELS = {"INFO": INFO, "WARN": WARN, "ERROR": ERROR}
SAMPLE_RATE = 24000


def key(name: str) -> str:
    return f"{E}[3m{name}{E}[0m{E}[2m={E}[0m"


def fields(pairs) -> str:
    return " ".join(f"{key(k)}{v}" for k, v in pairs)


def ts_text(us: int) -> str:
    dt = datetime.fromtimestamp(us // 1_000_000, timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{us % 1_000_000:06d}Z"


def head(us: int, level: str = "INFO", spans=()) -> str:
    out = f"{E}[2m{ts_text(us)}{E}[0m {LEVELS[level]} "
    if spans:
        out += "".join(f"{E}[1m{s}{E}[0m:" for s in spans) + " "
    return out


def span_tail(method: str, uri: str) -> str:
    return f" {E}[2m{fields([('method', method), ('uri', uri), ('version', 'HTTP/1.1')])}{E}[0m"


def preview(text: str) -> str:
    return text if len(text) <= 120 else text[:120] + "…"


def line_api(us: int, text: str, *, voice: str = "walter", engine: str = "f5", label: str = "F5",
             waveform_len: int = 201600, elapsed_ms: int = 2100, sample_rate: int = SAMPLE_RATE) -> bytes:
    audio_bytes = 44 + 2 * waveform_len
    return (head(us, spans=("request", "synthesize")) + "tts synthesis complete " + fields([
        ("target", '"ishowtts::api::tts"'), ("voice_id", voice), ("engine", engine), ("engine_label", label),
        ("sample_rate", sample_rate), ("waveform_len", waveform_len), ("elapsed_ms", elapsed_ms),
        ("audio_bytes", audio_bytes), ("audio_kb", f"{audio_bytes / 1024:.1f}"),
        ("text_len", len(text.encode("utf-8"))), ("text_preview", preview(text))])
        + span_tail("POST", "/api/tts") + "\n").encode("utf-8")


def line_chat(us: int, *, channel: str = "ishowspeed", user: str = "viewer_1", elapsed_ms: int = 3000,
              audio_bytes: int = 44 + 2 * 240000, requested_voice: str = "None", requested_engine: str = "None",
              voice: str = "walter", engine: str = "f5", label: str = "F5") -> bytes:
    return (head(us) + "tts synthesis complete " + fields([
        ("target", '"ishowtts::danmaku"'), ("channel", channel), ("user", user), ("elapsed_ms", elapsed_ms),
        ("audio_kb", f"{audio_bytes / 1024:.1f}"), ("audio_bytes", audio_bytes),
        ("requested_voice", requested_voice), ("requested_engine", requested_engine),
        ("resolved_voice", voice), ("resolved_engine", engine), ("engine_label", label)]) + "\n").encode("utf-8")


def request_started(us: int, method: str, uri: str) -> bytes:
    return (head(us, spans=("request",)) + "started processing request" + span_tail(method, uri) + "\n").encode()


def request_finished(us: int, method: str, uri: str, status: int, latency_ms: int) -> bytes:
    """The finished line (and, for a 5xx, the WARN line before it); ``us`` is when the request started."""
    tail = span_tail(method, uri)
    out = ""
    end = us + latency_ms * 1000
    if status >= 500:
        reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Error")
        out += (head(end, "WARN", spans=("request",)) + "response failed "
                + fields([("classification", f"Status code: {status} {reason}"), ("latency", f"{latency_ms} ms")])
                + tail + "\n")
    out += (head(end, spans=("request",)) + "finished processing request "
            + fields([("latency", f"{latency_ms} ms"), ("status", status)]) + tail + "\n")
    return out.encode("utf-8")


def lines_request(us: int, method: str, uri: str, status: int, latency_ms: int) -> bytes:
    return request_started(us, method, uri) + request_finished(us, method, uri, status, latency_ms)


def line_event(us: int, message: str, level: str = "INFO", pairs=(), spans=()) -> bytes:
    text = head(us, level, spans) + message
    if pairs:
        text += " " + fields(pairs)
    return (text + "\n").encode("utf-8")


# --- noise: what else lands in backend.log ------------------------------------------

def noise_tqdm(steps: int = 3) -> bytes:
    parts = []
    for i in range(1, steps + 1):
        pct = int(100 * i / steps)
        bar = "█" * (pct // 10) + " " * (10 - pct // 10)
        parts.append(f"\r{pct:3d}%|{bar}| {i}/{steps} [00:0{i}<00:00,  2.{i}it/s]")
    return ("".join(parts) + "\n").encode("utf-8")


def noise_onnxruntime(us: int) -> bytes:
    when = datetime.fromtimestamp(us / 1e6, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return (f"{E}[0;93m{when}123 [W:onnxruntime:Default, device_discovery.cc:164 DiscoverDevicesForPlatform] "
            f"GPU device discovery failed: device_discovery.cc:89 ReadFileContents Failed to open file: "
            f"\"/sys/class/drm/card0/device/vendor\"{E}[m\n").encode("utf-8")


NOISE_BUILD = (b"Building backend binary (release profile)...\n"
               b"   Compiling ishowtts-backend v0.1.0 (/ssd/ishowtts/crates/backend)\n"
               b"    Finished `release` profile [optimized] target(s) in 41.27s\n"
               b"Starting iShowTTS backend...\n")
NOISE_PYTHON = (b"[F5TTS] torch.compile(mode='max-autotune') enabled for model (PyTorch 2.5.0a0+872d972e41.nv24.08)\n"
                b"/opt/miniforge3/envs/ishowtts/lib/python3.10/site-packages/torch/nn/modules/conv.py:306: "
                b"UserWarning: Plan failed with a cudnnException: CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR\n"
                b"  return F.conv1d(input, weight, bias, self.stride,\n")
NOISE_EAGER = b"[F5TTS] Warning: torch.compile() failed, falling back to eager mode: RuntimeError('no triton')\n"


def wav_bytes(samples: int, *, rate: int = SAMPLE_RATE, claimed: Optional[int] = None) -> bytes:
    """A mono 16-bit WAV of ``samples`` silent samples; ``claimed``: the data length its header says."""
    data = b"\x00\x00" * samples
    size = len(data) if claimed is None else 2 * claimed
    header = b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", size)
    return header + data


def _scheduled(schedule, index: int, default):
    """The value a per-request schedule gives synthesis request ``index`` (0: the first POST /api/tts):
    a list is consumed in order (then ``default``), a callable is asked, None gives ``default``."""
    if callable(schedule):
        return schedule(index)
    if isinstance(schedule, list):
        return schedule.pop(0) if schedule else default
    return default if schedule is None else schedule


@dataclass(frozen=True)
class Request:
    """One HTTP request the stand-in received."""
    method: str
    path: str
    body: Optional[dict]
    at: float               # when it came (epoch seconds)


@dataclass(frozen=True)
class Synthesis:
    """One synthesis as the stand-in did it: the RTF it was told to take, and what it took."""
    rtf: float
    seconds: float          # measured around the synthesis work, as elapsed_ms is
    audio_seconds: float
    text: str
    nfe_step: Optional[int]

    @property
    def measured_rtf(self) -> float:
        return self.seconds / self.audio_seconds


@dataclass(frozen=True)
class Emitted:
    """A synthesis the stand-in logged: what ishowd should record for it."""
    ts_us: int
    source: str
    engine: str
    voice: str
    elapsed_ms: int
    audio_seconds: float

    @property
    def rtf(self) -> float:
        return self.elapsed_ms / 1000 / self.audio_seconds


class Clock:
    """Strictly increasing microsecond timestamps (real time by default, or synthetic)."""

    def __init__(self, start_us: Optional[int] = None, step_us: int = 0):
        self.synthetic = start_us is not None
        self.now = start_us or 0
        self.step = step_us

    def __call__(self, advance_us: int = 0) -> int:
        if self.synthetic:
            self.now += advance_us or self.step or 1
        else:
            self.now = max(self.now + 1, time.time_ns() // 1000)
        return self.now


class StandinBackend:
    def __init__(self, log_path, *, voices=("walter", "demo"), rtf: float = 0.278, clock: Optional[Clock] = None,
                 seconds_per_char: float = 0.01):
        self.log_path = str(log_path)
        self.voices = list(voices)
        self.rtf = rtf
        self.clock = clock or Clock()
        self.emitted: list[Emitted] = []
        # POST /api/tts: audio per character of text (the real F5 makes about 0.2 s; tests want short runs),
        # the RTF of each request and how each answers (schedules: see ``_scheduled``), the work itself
        self.seconds_per_char = seconds_per_char
        self.rtfs = None
        self.modes = None
        self.synth_work: Callable[[float], None] = time.sleep
        self.synthesis_lock = threading.Lock()      # F5 synthesises one request at a time
        self.requests: list[Request] = []
        self.syntheses: list[Synthesis] = []
        self.fd: Optional[int] = None
        self.server: Optional[ThreadingHTTPServer] = None
        self.thread: Optional[threading.Thread] = None
        self.lock = threading.Lock()
        self.starts = 0
        self.first_pending = False
        self.port = 0   # chosen at the first start, kept after (the real backend always binds 27121)

    # --- the log ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Append bytes with one write(2), as the backend's line writer does."""
        with self.lock:
            assert self.fd is not None, "the stand-in is not started"
            os.write(self.fd, data)

    def truncate_and_open(self) -> None:
        """``: > logs/backend.log`` then ``>> logs/backend.log`` (O_APPEND)."""
        if self.fd is not None:
            os.close(self.fd)
        with open(self.log_path, "wb"):
            pass
        self.fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND)

    def boot_lines(self) -> bytes:
        us = self.clock()
        return (NOISE_BUILD + NOISE_PYTHON + noise_onnxruntime(us)
                + line_event(self.clock(), "initialized F5-TTS runtime", pairs=[("voices", len(self.voices))])
                + line_event(self.clock(), "backend ready", pairs=[("addr", "0.0.0.0:27121")]))

    # --- emitting syntheses directly (fast, for big logs) ------------------------------

    def api_bytes(self, text: str = "欢迎来到我的直播间", *, voice: Optional[str] = None, rtf: Optional[float] = None,
                  waveform_len: int = 201600, us: Optional[int] = None, engine: str = "f5") -> bytes:
        voice = voice or self.voices[0]
        rtf = self.rtf if rtf is None else rtf
        audio = waveform_len / SAMPLE_RATE
        elapsed = max(1, round(rtf * audio * 1000))
        us = us or self.clock()
        self.emitted.append(Emitted(us, "api", engine, voice, elapsed, audio))
        begun = us - elapsed * 1000
        return (request_started(begun, "POST", "/api/tts")
                + line_api(us, text, voice=voice, engine=engine, label=engine.upper(), waveform_len=waveform_len,
                           elapsed_ms=elapsed)
                + request_finished(begun, "POST", "/api/tts", 200, elapsed))

    def chat_bytes(self, *, voice: Optional[str] = None, rtf: Optional[float] = None, samples: int = 240000,
                   us: Optional[int] = None, requested_voice: str = "None") -> bytes:
        voice = voice or self.voices[0]
        rtf = self.rtf if rtf is None else rtf
        audio = samples / SAMPLE_RATE
        elapsed = max(1, round(rtf * audio * 1000))
        us = us or self.clock()
        self.emitted.append(Emitted(us, "chat", "f5", voice, elapsed, audio))
        return line_chat(us, elapsed_ms=elapsed, audio_bytes=44 + 2 * samples, voice=voice,
                         requested_voice=requested_voice)

    def synth(self, text: str = "欢迎来到我的直播间", **kw) -> None:
        self.write(noise_tqdm() + self.api_bytes(text, **kw))

    def chat(self, **kw) -> None:
        self.write(self.chat_bytes(**kw))

    def health_bytes(self) -> bytes:
        return lines_request(self.clock(), "GET", "/api/health", 200, 0)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self, *, http: bool = True) -> "StandinBackend":
        """Truncate the log, write the boot lines, listen on 127.0.0.1 (port 0)."""
        self.truncate_and_open()
        self.write(self.boot_lines())
        self.starts += 1
        if http:
            self._serve()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.fd is not None:
            self.write(line_event(self.clock(), "shutdown signal received")
                       + line_event(self.clock(), "shutdown complete"))
            os.close(self.fd)
            self.fd = None

    def stop_http(self) -> None:
        """The HTTP side stops answering (a hung or crashed server); the log stays open."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def resume_http(self) -> None:
        """Answer again, on the same port."""
        if self.server is None:
            self._serve()

    def restart(self, *, http: bool = True) -> None:
        self.stop()
        self.start(http=http)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _serve(self) -> None:
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # the real log is the file
                pass

            def _answer(self, status: int, body: bytes, ctype: str, started: int) -> None:
                # logged as the response goes out (tower-http's on_response), so a client that has its
                # answer finds the lines in the log
                latency = max(0, (time.time_ns() // 1000 - started) // 1000)
                backend.write(lines_request(started, self.command, self.path, status, latency))
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                started = backend.clock()
                backend.requests.append(Request("GET", self.path, None, time.time()))
                if self.path == "/api/health":
                    body = json.dumps({"status": "ok", "voices": len(backend.voices),
                                       "default_voice": backend.voices[0]}).encode()
                    self._answer(200, body, "application/json", started)
                elif self.path == "/api/voices":
                    body = json.dumps([{"id": v, "engine": "f5"} for v in backend.voices]).encode()
                    self._answer(200, body, "application/json", started)
                else:
                    self._answer(404, b"not found", "text/plain", started)

            def do_POST(self):
                started = backend.clock()
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    req = json.loads(raw)
                except ValueError:
                    req = None
                index = sum(1 for r in backend.requests if r.method == "POST" and r.path == "/api/tts")
                backend.requests.append(Request("POST", self.path, req if isinstance(req, dict) else None,
                                                time.time()))
                if self.path != "/api/tts":
                    return self._answer(404, b"not found", "text/plain", started)
                try:
                    text = req["text"]
                except (KeyError, TypeError):
                    return self._answer(400, b"invalid request", "text/plain", started)
                voice = req.get("voice_id") or backend.voices[0]
                if not isinstance(text, str) or not text.strip():
                    return self._answer(400, b"text must not be empty", "text/plain", started)
                if voice not in backend.voices:
                    return self._answer(400, f"unknown voice {voice}".encode(), "text/plain", started)
                mode = _scheduled(backend.modes, index, None)
                rtf = _scheduled(backend.rtfs, index, backend.rtf)
                if req.get("fail") or mode == "fail":
                    return self._answer(502, b"synthesis failed: CUDA error: an illegal memory access was "
                                        b"encountered", "text/plain", started)
                samples = max(1, round(SAMPLE_RATE * backend.seconds_per_char * len(text)))
                audio = samples / SAMPLE_RATE
                with backend.synthesis_lock:
                    t0 = time.monotonic()
                    backend.synth_work(rtf * audio)
                    took = time.monotonic() - t0
                elapsed = max(1, round(took * 1000))
                us = backend.clock()
                backend.syntheses.append(Synthesis(rtf, took, audio, text, req.get("nfe_step")))
                backend.emitted.append(Emitted(us, "api", "f5", voice, elapsed, audio))
                backend.write(noise_tqdm() + line_api(us, text, voice=voice, waveform_len=samples,
                                                      elapsed_ms=elapsed))
                wav = wav_bytes(samples)
                if mode == "bad_wav":           # a header that says half the samples
                    wav = wav_bytes(samples, claimed=samples // 2)
                elif mode == "broken_audio":    # base64 of something that is not a WAV
                    wav = b"ID3\x04\x00" + bytes(64)
                audio_b64 = "%%% not base64 %%%" if mode == "not_base64" else base64.b64encode(wav).decode()
                body = json.dumps({"request_id": f"r{us}", "voice_id": voice, "engine": "f5", "engine_label": "F5",
                                   "sample_rate": SAMPLE_RATE, "waveform_len": samples,
                                   "audio_base64": audio_b64, "format": "audio/wav"}).encode()
                self._answer(200, body, "application/json", started)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # --- what operators do to the file --------------------------------------------------

    def rename_rotate(self, new_path) -> None:
        """``mv backend.log backend.log.1``: the backend keeps writing into the renamed file."""
        os.rename(self.log_path, new_path)

    def copy_truncate(self, dest) -> None:
        """The weekly rotation: copy, then truncate in place (the backend's O_APPEND fd follows)."""
        os.makedirs(os.path.dirname(str(dest)), exist_ok=True)
        with open(self.log_path, "rb") as src, open(dest, "wb") as out:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
        os.truncate(self.log_path, 0)

    def delete_and_recreate(self) -> None:
        """``rm backend.log`` and a new start: a new file (perhaps with the same inode number)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        os.unlink(self.log_path)
        self.truncate_and_open()


def post_json(url: str, body: dict, timeout: float = 10) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


if __name__ == "__main__":  # pragma: no cover - run by hand: python tests/standin_backend.py /tmp/backend.log
    import sys
    b = StandinBackend(sys.argv[1] if len(sys.argv) > 1 else "backend.log").start()
    print(b.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        b.stop()
