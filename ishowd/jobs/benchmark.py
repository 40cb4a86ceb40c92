"""The ``benchmark`` job: weekly, a few timed syntheses through the backend's API, judged.

What is sent, measured and judged is ``ishowd/benchmark.py`` (also the audit's);
here are its keys, its metric and the job. ``benchmark_rtf{stat}`` reports the
figures of the latest run that produced some (a run skipped or failed without
figures leaves the last ones standing), after a daemon restart too.
"""
from __future__ import annotations

from typing import Optional

from ..config import Key
from ..metrics import declare
from . import Job, JobContext, Outcome, WEEK, job_keys, register

# One typical sentence of the live stream, about 20 characters.
TEXT = "大家好，欢迎来到我的直播间，今天我们一起聊聊天。"
PREVIEW = 120               # the backend logs a request's text cut here: the benchmark's must be whole


def _text_problem(text: str) -> Optional[str]:
    if not text.strip() or len(text) > PREVIEW or not text.isprintable():
        return (f"one line of text of 1 to {PREVIEW} characters with no control characters (the backend logs "
                f"a request's text cut at {PREVIEW}: the benchmark's own requests are told by it whole)")
    return None


KEYS = job_keys("benchmark", "0 4 * * 0", "90m", {
    "text": Key("str", TEXT, "the sentence each request synthesises (the log tells the benchmark's requests "
                "by it)", check=_text_problem),
    "voice": Key("str", "", "the voice_id sent; empty: the backend's default voice"),
    "nfe_step": Key("int", 8, "the NFE steps asked for (the service's [f5] default_nfe_step)", min=1, max=64),
    "warmup": Key("int", 1, "requests sent and checked first, not counted", min=0, max=10),
    "runs": Key("int", 5, "requests timed and judged", min=1, max=100),
    "request_timeout": Key("duration", "120s", "a request with no whole answer after this is a failed run",
                           min=1, max=3600),
    "max_mean": Key("float", 0.35, "a mean RTF above this fails the run", min=0.001, max=100),
    "baseline": Key("float", 0.30, "the RTF the deployment is known to reach", min=0.001, max=100),
    "worst_factor": Key("float", 1.5, "a worst run above this times baseline fails the run", min=1, max=100),
    "max_cv": Key("float", 0.20, "a spread (std / mean) above this is a warning: GPU clock not locked, or "
                  "thermal throttling", min=0, max=10),
    "max_growth": Key("int", 50_000_000, "memory growth over the runs above this many bytes (the backend's "
                      "RSS, or GPU memory in use) is a warning: a leak", min=0, max=1 << 40),
    "min_gpu_free": Key("int", 5_000_000_000, "less free GPU memory than this many bytes: skipped, no request "
                        "sent", min=0, max=1 << 50),
    "quiet": Key("duration", "2m", "a scheduled run waits until no synthesis was recorded for this long",
                 min=1, max=86400),
    "quiet_window": Key("duration", "1h", "a scheduled run that found no quiet spell within this is skipped",
                        min=1, max=7 * 86400),
})


BENCHMARK_RTF = declare("benchmark_rtf", "ratio",
                        "The latest benchmark run's RTF statistics (stat: mean, median, p95, best, worst, std, "
                        "cv): a fixed text at a fixed NFE, one request at a time.", ("stat",), group="rtf")
METRICS = (BENCHMARK_RTF,)


def figures_of(result: dict) -> Optional[dict]:
    """A run's RTF statistics when it produced them, else None."""
    from ..benchmark import STATS
    rtf = result.get("rtf") if isinstance(result, dict) else None
    if not isinstance(rtf, dict):
        return None
    out = {k: rtf.get(k) for k in STATS}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in out.values()):
        return None
    return out


@register
class Benchmark(Job):
    name = "benchmark"
    period = WEEK
    touches = frozenset({"synthesis"})

    def run(self, ctx: JobContext) -> Outcome:
        from ..benchmark import run_benchmark
        return run_benchmark(self.config, ctx)

    def samples(self, last) -> list:
        from ..metrics import Sample
        figures = self.latest_result(last, figures_of)
        if figures is None:
            return []
        return [Sample(BENCHMARK_RTF, float(v), {"stat": k}) for k, v in figures.items()]
