"""What the idle daemon costs the machine, measured from outside, beside its peers in the same run.

    python bench/idle_cost.py [--intervals 10 1] [--seconds 120] [--warmup 20] [--scrape-ishowd]

For each interval, at once and over the same wall window:

* ``ishowd run`` (the one installed beside this interpreter) with the built-in
  defaults plus the exporter on 127.0.0.1, ingestion of a real log and the
  health probe against a real stand-in backend (``tests/standin_backend.py``,
  run as its own process, whose log that is: each probe adds its lines);
* collectd (``collectd -f``) with the cpu, memory, swap, df, load, disk,
  interface and csv plugins at the same interval, where installed;
* node_exporter, scraped by this script at the same interval, where installed;
* a bare Python ``threading.Event.wait`` loop at the same interval: the floor.

Each process is read from ``/proc`` once a second: CPU from each thread's
``schedstat`` (nanoseconds on the CPU), wake-ups from each thread's voluntary
plus involuntary context switches, and ``VmRSS``. A thread that ends between
two readings takes its last second with it, so the threads started in the
window are counted too; ``ticks`` is the same CPU from ``/proc/PID/stat``
(clock ticks, every thread that ever ran, children reaped included), a check
on the first. ``--scrape-ishowd`` also scrapes ishowd's ``/metrics`` at the
interval, as Prometheus would. The package is compiled to bytecode first, as an
install leaves it. Run it on an otherwise quiet machine: all
figures move with the load, the ratios less.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, ok, deadline: float) -> None:
    end = time.monotonic() + deadline
    while not ok():
        if time.monotonic() > end:
            raise SystemExit(f"idle_cost: {what} did not come up within {deadline:g}s")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            resp.read()
            return resp.status == 200
    except OSError:
        return False


class Watched:
    """One process (and its children) as seen from /proc."""

    def __init__(self, name: str, proc: subprocess.Popen):
        self.name, self.proc = name, proc
        self.threads: dict[int, tuple[int, int]] = {}     # tid -> (runtime ns, context switches) last read
        self.cpu_ns = 0
        self.switches = 0
        self.started = 0
        self.rss_max = 0
        self.rss = 0
        self.ticks0 = self.ticks = 0
        self.wall = 0.0

    def pids(self) -> list[int]:
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            for task in _listdir(f"/proc/{pid}/task"):
                try:
                    todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
                except OSError:
                    pass
        return out

    def read(self, counting: bool) -> None:
        seen: dict[int, tuple[int, int]] = {}
        ticks = rss = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += sum(int(f) for f in fields[11:15])        # utime stime cutime cstime
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
            except (OSError, IndexError):
                continue
            for task in _listdir(f"/proc/{pid}/task"):
                try:
                    runtime = int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
                    status = Path(f"/proc/{pid}/task/{task}/status").read_text()
                except OSError:
                    continue
                switches = sum(int(line.split()[1]) for line in status.splitlines()
                               if "ctxt_switches:" in line)
                seen[int(task)] = (runtime, switches)
        if counting:
            for tid, (runtime, switches) in seen.items():
                before = self.threads.get(tid)
                if before is None:
                    self.started += 1
                    before = (0, 0)
                self.cpu_ns += runtime - before[0]
                self.switches += switches - before[1]
            self.ticks = ticks
            self.rss_max = max(self.rss_max, rss)
        else:
            self.ticks0 = self.ticks = ticks
        self.threads, self.rss = seen, rss


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def collectd_conf(tmp: Path, interval: float) -> Path:
    conf = tmp / "collectd.conf"
    plugins = "".join(f"LoadPlugin {p}\n" for p in ("cpu", "memory", "swap", "df", "load", "disk", "interface",
                                                     "csv"))
    conf.write_text(f'Hostname "bench"\nFQDNLookup false\nInterval {interval:g}\nBaseDir "{tmp}/collectd"\n'
                    f'PIDFile "{tmp}/collectd.pid"\nPluginDir "/usr/lib/collectd"\n'
                    f'TypesDB "/usr/share/collectd/types.db"\n{plugins}'
                    f'<Plugin csv>\n  DataDir "{tmp}/collectd/csv"\n  StoreRates false\n</Plugin>\n')
    (tmp / "collectd").mkdir()
    return conf


def scrape_every(url: str, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                resp.read()
        except OSError:
            pass


def run_interval(interval: float, seconds: float, warmup: float, scrape_ishowd: bool) -> list[Watched]:
    tmp = Path(tempfile.mkdtemp(prefix="idle_cost-"))
    procs: list[Watched] = []
    stop = threading.Event()
    scrapers = []
    standin = None
    try:
        log_path = tmp / "backend.log"
        standin = subprocess.Popen([sys.executable, str(HERE.parent / "tests" / "standin_backend.py"), str(log_path)],
                                   stdout=subprocess.PIPE, text=True)
        backend_url = standin.stdout.readline().strip()
        if not backend_url.startswith("http"):
            raise SystemExit("idle_cost: the stand-in backend did not start")
        port = free_port()
        cfg = tmp / "ishowd.toml"
        cfg.write_text(f'[storage]\npath = "{tmp / "ishowd.db"}"\n[sampling]\ninterval = "{interval:g}s"\n'
                       f'[exporter]\nlisten = "127.0.0.1:{port}"\n[rtf]\nlogs = ["{log_path}"]\n'
                       f'[backend]\nurl = "{backend_url}"\n')
        ishowd = Path(sys.executable).with_name("ishowd")
        procs.append(Watched("ishowd", subprocess.Popen([str(ishowd), "run", "--config", str(cfg)],
                                                        stderr=open(tmp / "ishowd.err", "wb"))))
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        daemon = procs[0].proc
        wait_for("ishowd's /metrics", lambda: answers(metrics_url) or daemon.poll() is not None, 60)
        if daemon.poll() is not None:
            raise SystemExit(f"idle_cost: ishowd exited ({daemon.returncode}): {(tmp / 'ishowd.err').read_text()}")
        if scrape_ishowd:
            scrapers.append(metrics_url)
        if shutil.which("collectd"):
            procs.append(Watched("collectd", subprocess.Popen(["collectd", "-f", "-C", str(collectd_conf(tmp, interval))],
                                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        node = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
        if node:
            nport = free_port()
            procs.append(Watched("node_exporter", subprocess.Popen([node, f"--web.listen-address=127.0.0.1:{nport}"],
                                                                   stdout=subprocess.DEVNULL,
                                                                   stderr=subprocess.DEVNULL)))
            node_url = f"http://127.0.0.1:{nport}/metrics"
            wait_for("node_exporter", lambda: answers(node_url), 30)
            scrapers.append(node_url)
        procs.append(Watched("Event.wait loop", subprocess.Popen(
            [sys.executable, "-c", "import threading\nstop = threading.Event()\n"
             f"while not stop.wait({interval!r}):\n    pass\n"])))
        for url in scrapers:
            t = threading.Thread(target=scrape_every, args=(url, interval, stop), daemon=True)
            t.start()
        time.sleep(warmup)   # start-up (imports, schema, the log's first read) is not what is measured
        for w in procs:
            w.read(counting=False)
        t0 = time.monotonic()
        next_read = t0
        while True:
            next_read += 1.0
            time.sleep(max(0.0, next_read - time.monotonic()))
            elapsed = time.monotonic() - t0
            for w in procs:
                w.read(counting=True)
                if w.proc.poll() is not None:
                    raise SystemExit(f"idle_cost: {w.name} exited ({w.proc.returncode}) during the window"
                                     + (f"; see {tmp / 'ishowd.err'}" if w.name == "ishowd" else ""))
            if elapsed >= seconds:
                break
        for w in procs:
            w.wall = elapsed
        return procs
    finally:
        stop.set()
        for w in procs:
            w.proc.terminate()
        for w in procs:
            try:
                w.proc.wait(10)
            except subprocess.TimeoutExpired:
                w.proc.kill()
        if standin is not None:
            standin.terminate()
            standin.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def report(interval: float, procs: list[Watched], scrape_ishowd: bool) -> None:
    wall = procs[0].wall
    print(f"\ninterval {interval:g}s, window {wall:.0f}s"
          + (", ishowd's /metrics scraped at the interval" if scrape_ishowd else ", ishowd's /metrics not scraped")
          + ", node_exporter scraped at the interval")
    print(f"{'process':<16} {'CPU ms/s':>9} {'ms/tick':>8} {'ticks ms/s':>10} {'wake-ups/s':>10} "
          f"{'threads+':>8} {'RSS MB':>7}")
    for w in procs:
        cpu = w.cpu_ns / 1e6 / wall
        print(f"{w.name:<16} {cpu:9.3f} {cpu * interval:8.3f} {(w.ticks - w.ticks0) * 1000 / CLK_TCK / wall:10.3f} "
              f"{w.switches / wall:10.2f} {w.started:8d} {w.rss_max / 1e6:7.1f}")
    me = procs[0]
    for w in procs[1:]:
        if w.cpu_ns and w.switches:
            print(f"ishowd / {w.name}: CPU {me.cpu_ns / w.cpu_ns:.2f}x, wake-ups {me.switches / w.switches:.2f}x, "
                  f"RSS {me.rss_max / max(w.rss_max, 1):.2f}x")


def compile_package() -> None:
    """An installed daemon runs from the bytecode pip compiled at install. A checkout run with
    PYTHONDONTWRITEBYTECODE set (as on some CI machines) compiles every module from source at each
    start instead, which leaves the idle daemon 1 MB larger than any deployment: compile it first."""
    import compileall

    import ishowd
    compileall.compile_dir(os.path.dirname(ishowd.__file__), quiet=1)


def main() -> None:
    signal.signal(signal.SIGTERM, signal.default_int_handler)   # stopped, it stops what it started
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--intervals", type=float, nargs="+", default=[10.0, 1.0])
    ap.add_argument("--seconds", type=float, default=120.0, help="the measured window, per interval")
    ap.add_argument("--warmup", type=float, default=20.0, help="seconds after ishowd serves /metrics, not measured")
    ap.add_argument("--scrape-ishowd", action="store_true")
    args = ap.parse_args()
    compile_package()
    for interval in args.intervals:
        report(interval, run_interval(interval, args.seconds, args.warmup, args.scrape_ishowd), args.scrape_ishowd)


if __name__ == "__main__":
    main()
