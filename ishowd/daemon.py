"""``ishowd``: the daemon systemd runs.

Each tick runs the due collectors (a collector that fails loses its own
metrics for that tick, never the tick), writes one transaction, seals and
prunes the store when an hour has passed, then runs the after-tick tasks.
The tick and the periodic tasks (log ingestion) run in the main thread's own
loop (``ishowd/mainloop.py``), on one grid, so an idle daemon wakes once for
the tick and the tasks due with it; a task's run goes to the task pool
instead when the task says it is long (``quick()``: a backlog to read), so it
holds up no tick. The maintenance jobs keep to APScheduler, for its calendar,
in a thread of their own that sleeps until the next is due. The first tick
runs at start.

Under systemd (``Type=notify``, ``ishowd/notify.py``): ``READY=1`` once the
first tick has run, ``STATUS=`` kept current, ``WATCHDOG=1`` every half
``WatchdogSec`` while the sampling loop advances (``_stall``), ``STOPPING=1``
at SIGTERM. SIGTERM/SIGINT finish what is in flight, close the store and
exit 0. SIGHUP reloads the config file (``reload``). The loop sleeps on the
signals' wake-up pipe, so a signal wakes it at once, and acts on it between
two runs (``_on_signals``).
"""
from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Optional

from .collectors import Collector, TickContext
from .config import BUILTIN, Config, ConfigError, format_duration
from .metrics import NO_LABELS, Sample
from .notify import Notifier
from .specs.daemon import COLLECTOR_DURATION, COLLECTOR_SUCCESS
from .store.errors import is_storage_failure

log = logging.getLogger("ishowd")

# Sections no collector reads: a reload that changes only these keeps the collectors running as they are.
NOT_COLLECTED = frozenset({"alerts", "jobs", "exporter", "logging", "sampling", "storage", "deployment"})
TASK_WORKERS = 2        # threads for the tasks' long runs (a log's backlog), each started when first needed
HANDLED_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
TICK_ORDER, TASK_ORDER = 1, 0   # in a wake-up the tasks run first: the tick's alert evaluation judges what they read
# A store renamed or deleted under the daemon is noticed within this (one stat of its path); at a
# 1 s interval a stat each tick was a twentieth of the tick, cold.
MOVED_CHECK_EVERY = 5.0


class Daemon:
    def __init__(self, config: Config):
        from .jobs.rotate_logs import recover
        from .store.writer import open_store

        self.config = config
        self.store = open_store(config)
        said = recover(self.store, config)   # a rotation a crash cut short: finished before anything reads the log
        if said:
            log.warning("%s", said)
        self.collectors = self._collectors(config)
        self.tasks = self._tasks(config)
        from .jobs.runner import JobRunner, set_up
        jobs, unavailable = set_up(config)
        for name, reason in unavailable.items():
            log.info("job %s: not scheduled on this host (%s)", name, reason)
        self.jobs = JobRunner(config, self.store, jobs, unavailable)
        self.ticks = 0
        self.exit_code = 0
        self.loop = None
        self.scheduler = None
        self._task_pool = None
        self._long_runs: dict = {}                   # task name -> the Future of its run in the task pool
        self._warned: set[tuple[str, str]] = set()
        self._checks: dict = {}                      # collector -> _label_sets(collector)
        self._moved_checked = -math.inf              # monotonic time of the last store.moved()
        self.notifier = Notifier(None)
        self._closing = threading.Event()
        self._ready = False
        self._stopping = False
        self._status_sent: Optional[str] = None
        self._firing: list[str] = []                 # the rules firing at the last tick, for STATUS
        self._reload_problem: Optional[str] = None
        # monotonic times the watchdog judges the sampling loop by
        self._loop_started = time.monotonic()
        self._tick_began: Optional[float] = None
        self._tick_ended: Optional[float] = None

    def _collectors(self, config: Config) -> list[Collector]:
        from . import catalog
        made = [cls(config) for _, cls in sorted(catalog.collectors().items())]
        return [c for c in made if self._setup(c)]

    def _tasks(self, config: Config) -> list:
        from . import catalog
        made = [cls(config, self.store) for _, cls in sorted(catalog.tasks().items(),
                                                                key=lambda kv: (kv[1].order, kv[0]))]
        return [t for t in made if self._setup(t)]

    def _setup(self, part) -> bool:
        kind = part.kind
        try:
            reason = part.setup()
        except Exception as exc:  # a source that cannot start costs only itself
            log.warning("%s %s: disabled, setup failed: %s", kind, part.name, exc)
            return False
        if reason:
            log.info("%s %s: not on this host (%s)", kind, part.name, reason)
            return False
        return True

    def _warn_once(self, who: str, what: str) -> None:
        if (who, what) not in self._warned:
            self._warned.add((who, what))
            log.warning("%s: %s", who, what)

    # --- the tick ------------------------------------------------------------------

    def collect(self, now: float) -> list[Sample]:
        ctx = TickContext(now=now, config=self.config)
        batch: list[Sample] = []
        for c in self.collectors:
            if self.ticks % c.every:
                continue
            start = time.perf_counter()
            ok = 1.0
            try:
                got = list(c.collect(ctx))
            except Exception as exc:
                got, ok = [], 0.0
                self._warn_once(f"collector {c.name}", f"failed: {exc!r} (its metrics are absent until it recovers)")
            took = time.perf_counter() - start
            label_sets = self._label_sets(c)
            for s in got:
                try:
                    # by the metric's name (a str hashes once; a Metric, a tuple, every time)
                    want = label_sets.get(s.metric.name)
                    labels, value = s.labels, s.value
                    good = want is not None and want[0] == s.metric \
                        and (labels is NO_LABELS and not want[1] or labels.keys() == want[1]) \
                        and isinstance(value, (int, float)) and math.isfinite(value)
                except (AttributeError, TypeError):   # not a Sample of a Metric, labels not a mapping
                    good = False
                if good:
                    batch.append(s)
                else:
                    self._warn_once(f"collector {c.name}",
                                    f"dropped a malformed sample of {getattr(getattr(s, 'metric', s), 'name', s)}")
            labels = label_sets[None]
            batch.append(Sample(COLLECTOR_DURATION, round(took, 6), labels))
            batch.append(Sample(COLLECTOR_SUCCESS, ok, labels))
        batch += self.jobs.samples(now)
        return batch

    def _label_sets(self, c: Collector) -> dict:
        """What a sample of ``c`` is checked against, made once: by name, each of its metrics with
        the label names it takes; under None the labels of ``c``'s own duration and success."""
        sets = self._checks.get(c)
        if sets is None:
            sets = self._checks[c] = {m.name: (m, frozenset(m.labels)) for m in c.metrics}
            sets[None] = {"collector": c.name}
        return sets

    def tick(self, now: Optional[float] = None, *, after: bool = True) -> int:
        """Sample, write, maintain, run after-tick tasks (unless ``after`` is False). Returns the samples written."""
        now = time.time() if now is None else now
        mono = time.monotonic()
        moved = None
        if mono - self._moved_checked >= MOVED_CHECK_EVERY:
            self._moved_checked = mono
            moved = self.store.moved()
        if moved:
            self._stop(f"{moved}: stopping, for writing on would go where no reader looks; "
                       "started again, ishowd begins a new store there")
            return 0
        batch = self.collect(now)
        if self.store.writes_failing:
            self.store.shrink_wal()
        written = None
        try:
            written = self.store.write(now, batch)
            self.store.maintain(now)
        except Exception as exc:  # a full disk must not kill the daemon; the next tick retries
            if is_storage_failure(exc):
                self.store.write_failed("tick", exc, tick_lost=written is None)
            else:
                log.error("writing the tick failed: %s", exc)
        else:
            self.store.write_succeeded("tick")
        self.ticks += 1
        if after:
            for task in self.tasks:
                if task.after_tick:
                    self._run_task(task, now)
            self._firing = self._firing_now()   # here: a reload swaps the alert task between ticks
        return written or 0

    def _stop(self, why: str) -> None:
        """Stop with exit status 1, said once: systemd starts ishowd again (``Restart=on-failure``)."""
        if self.exit_code:
            return
        self.exit_code = 1
        log.error("%s", why)
        if self.loop is not None:
            self.loop.stop()

    def _run_task(self, task, now: Optional[float] = None) -> None:
        try:
            task.run(time.time() if now is None else now)
        except Exception as exc:
            log.exception("task %s failed: %s", task.name, exc)

    # --- running -------------------------------------------------------------------

    def run_once(self) -> None:
        # the after-tick tasks (alert evaluation) last, so they judge what the others ingested
        self.tick(after=False)
        for task in self.tasks:
            if not task.after_tick:
                self._run_task(task)
        for task in self.tasks:
            if task.after_tick:
                self._run_task(task)
        for task in self.tasks:
            task.settle()

    def run_forever(self) -> None:
        from concurrent.futures.thread import ThreadPoolExecutor

        from .exporter import start as start_exporter
        from .jobs import scheduling
        from .mainloop import MainLoop
        from .notify import watchdog_timeout
        from .schedule import JobPool, SteadyScheduler

        self.notifier = Notifier.from_environment()
        watchdog = watchdog_timeout()
        self._task_pool = ThreadPoolExecutor(TASK_WORKERS, thread_name_prefix="ishowd-task")
        self.loop = MainLoop(HANDLED_SIGNALS, self._on_signals, on_step=self._on_clock_step)
        self.scheduler = SteadyScheduler(executors={scheduling.EXECUTOR: JobPool(scheduling.WORKERS)},
                                         timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self._schedule_sampling()
        self._schedule_tasks()
        scheduling.add_jobs(self.scheduler, self.jobs)
        calendar = threading.Thread(target=self.scheduler.start, name="ishowd-jobs", daemon=True)
        calendar.start()
        from .control import ControlServer, socket_path
        self.control = ControlServer(socket_path(self.store.path), self._run_job_for_operator,
                                     lambda: sorted(self.jobs.jobs))
        self.control.start()
        self.exporter = start_exporter(self.config, self.store.path, self.config.metrics)
        log.info("sampling every %gs into %s with %s; tasks: %s; jobs: %s", self.config.sampling.interval,
                 self.store.path, ", ".join(c.name for c in self.collectors) or "no collectors",
                 ", ".join(t.name for t in self.tasks) or "none", ", ".join(self.jobs.enabled()) or "none")
        self._loop_started = time.monotonic()
        if watchdog is not None:
            threading.Thread(target=self._watchdog, args=(watchdog,), name="ishowd-watchdog", daemon=True).start()
        try:
            self.loop.run()         # returns after a stop, with the run in flight finished
        finally:
            for signum in HANDLED_SIGNALS:   # a second Ctrl-C does not cut the close short (it is bounded)
                signal.signal(signum, signal.SIG_IGN)
            self.scheduler.request_stop()
            calendar.join()         # the jobs in flight finish (a stop asked them to)
            self._task_pool.shutdown(wait=True)   # and the tasks' long runs

    # --- scheduling ----------------------------------------------------------------

    def _schedule_sampling(self) -> None:
        def sample() -> None:
            self._tick_began = time.monotonic()
            try:
                self.tick()
            finally:
                self._tick_ended = time.monotonic()
            self._after_sample()

        self.loop.every("sample", self.config.sampling.interval, sample, order=TICK_ORDER)

    def _schedule_tasks(self) -> None:
        """Each task with an interval on the loop's grid. A calendar task (``cron()``) on APScheduler:
        run there in the jobs' pool."""
        from .jobs import scheduling
        from .schedule import CronTrigger
        for task in self.tasks:
            if task.after_tick:
                continue
            every = task.interval()
            cron = task.cron()
            if every:
                self.loop.every(task.name, every, self._task_job(task), order=TASK_ORDER)
            elif cron and self.scheduler is not None:
                self.scheduler.add_job(self._run_task, CronTrigger(timezone=cron.pop("timezone", None), **cron),
                                       args=(task,), id=task.name, name=task.name, executor=scheduling.EXECUTOR,
                                       misfire_grace_time=3600, replace_existing=True)

    def _task_job(self, task):
        def job() -> None:
            running = self._long_runs.get(task.name)
            if running is not None and not running.done():
                return                      # its long run is still going: this slot is that run's
            try:
                quick = task.quick()
            except Exception as exc:
                quick = False
                self._warn_once(f"task {task.name}", f"could not tell whether its run is short ({exc!r})")
            if quick:
                self._run_task(task)
            else:
                self._long_runs[task.name] = self._task_pool.submit(self._run_task, task)
        return job

    def _run_job_for_operator(self, name: str, progress) -> dict:
        return self.jobs.run(name, trigger="operator", progress=progress).as_json()

    # --- what systemd is told ------------------------------------------------------------

    def _after_sample(self) -> None:
        if self.exit_code:
            return
        if not self._ready:
            self._ready = True
            self._status_sent = self.status_text()
            self.notifier.ready(self._status_sent)
        else:
            self._send_status()

    def _firing_now(self) -> list[str]:
        for task in self.tasks:
            engine = getattr(getattr(task, "evaluator", None), "engine", None)
            if engine is not None:
                return sorted({st.rule for st in engine.active()})
        return []

    def status_text(self) -> str:
        """The line ``systemctl status`` shows: a refused reload first, then the interval, the store,
        the alerts firing and the last job run."""
        parts = []
        if self._reload_problem:
            parts.append(f"reload refused (the running configuration stays in force): {self._reload_problem}")
        parts.append(f"sampling every {format_duration(self.config.sampling.interval)}")
        if self.store.writes_failing:
            parts.append("store writes failing (see the journal)")
        firing = self._firing
        if firing:
            shown = ", ".join(firing[:3]) + (", ..." if len(firing) > 3 else "")
            parts.append(f"{len(firing)} alert{'s' if len(firing) > 1 else ''} firing ({shown})")
        else:
            parts.append("no alert firing")
        done = [r for r in list(self.jobs.last.values()) if r.finished is not None]
        if done:
            from .timefmt import local_time
            last = max(done, key=lambda r: r.finished)
            parts.append(f"last job: {last.job} {last.status} at {local_time(last.finished)}")
        else:
            parts.append("no job run yet")
        return "; ".join(parts)

    def _send_status(self) -> None:
        if not self.notifier.enabled:
            return          # not under systemd: nobody to tell, so nothing to put together each tick
        text = self.status_text()
        if text != self._status_sent:
            self._status_sent = text
            self.notifier.status(text)

    def _watchdog(self, timeout: float) -> None:
        """Ping every half ``timeout`` while the sampling loop advances; withheld, systemd ends and
        restarts ishowd (``WatchdogSec=``, ``Restart=on-failure``) a ``timeout`` after the last ping."""
        withheld = False
        while not self._closing.wait(timeout / 2):
            stall = self._stall(time.monotonic(), timeout / 2)
            if stall is None:
                if withheld:
                    withheld = False
                    log.warning("sampling advances again; watchdog pings resumed")
                self.notifier.watchdog()
            elif not withheld:
                withheld = True
                log.error("%s: the watchdog's pings are withheld, so systemd restarts ishowd", stall)

    def _stall(self, now: float, grace: float) -> Optional[str]:
        """Why the sampling loop is not advancing, or None: a tick in flight for longer than ``grace``,
        or no tick begun for an interval and ``grace``."""
        began, ended = self._tick_began, self._tick_ended
        if began is not None and (ended is None or ended < began):
            return f"the sampling tick has run for {now - began:.1f}s" if now - began > grace else None
        since = now - (self._loop_started if began is None else began)
        interval = self.config.sampling.interval
        if since > interval + grace:
            return f"no sampling tick has begun for {since:.1f}s (one is due every {format_duration(interval)})"
        return None

    # --- signals ------------------------------------------------------------------------

    def _on_signals(self, signums: list[int]) -> None:
        """The main loop woke for signals: it acts on them here, between two runs."""
        for signum in signums:
            if signum == signal.SIGHUP:
                if not self._stopping:
                    self.reload()
            elif not self._stopping:
                self._stopping = True
                log.info("%s: finishing the work in flight, then exiting", signal.Signals(signum).name)
                self.notifier.stopping()
                self.jobs.stop()  # a job running for an hour must not hold the stop up
                self.loop.stop()

    def _on_clock_step(self, step: float) -> None:
        """The wall clock stepped: the calendar's thread looks again now, not when its sleep ends
        (and says so, as it re-anchors the jobs)."""
        if self.scheduler is not None:
            self.scheduler.wakeup()

    # --- reload -------------------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: read the config file again and apply it. Alert states, job history and log
        positions carry over (they are in the store, and the job runner stays). A config that
        does not load, or changes ``[storage] path``, is refused whole: the running one stays."""
        from .catalog import load_config

        if self._ready:
            self.notifier.reloading()
        log.info("SIGHUP: reloading the configuration")
        try:
            new = load_config(None if self.config.source == BUILTIN else self.config.source)
            self._refuse_unappliable(new)
            self._apply(new)
        except ConfigError as exc:
            self._reload_problem = str(exc)
            log.error("reload refused, the running configuration stays in force: %s", exc)
        except Exception as exc:  # a bug must not end the daemon: say it, go on with what was applied
            self._reload_problem = f"reload failed partway ({exc}): restart ishowd to apply the configuration"
            log.exception("reload failed partway; restart ishowd to apply the configuration")
        else:
            self._reload_problem = None
        if self._ready:
            self._status_sent = self.status_text()
            self.notifier.ready(self._status_sent)

    def _refuse_unappliable(self, new: Config) -> None:
        from .paths import store_path
        path = os.path.abspath(store_path(new))
        if path != os.path.abspath(self.store.path):
            raise ConfigError(new.source, "[storage] path", "", detail=(
                f"changed from {self.store.path} to {path}, which cannot be applied while ishowd runs "
                "(restart ishowd to move to that store)"))

    def _apply(self, new: Config) -> None:
        old = self.config
        changed = sorted(f"[{n}]" for n in set(old.sections) | set(new.sections)
                         if old.sections.get(n) != new.sections.get(n))
        changed += sorted(f"[[{n}]]" for n in set(old.arrays) | set(new.arrays)
                          if old.arrays.get(n) != new.arrays.get(n))
        if not changed:
            log.info("configuration reloaded from %s: nothing changed", new.source)
            return
        tasks = self._tasks(new)   # before the swap: a new alert evaluator observes the writes from here on
        # between two ticks: the tick runs in this same thread, the main loop's
        self.config = new
        retired, self.tasks = self.tasks, tasks
        if any(n.split(".")[0] not in NOT_COLLECTED and old.sections.get(n) != new.sections.get(n)
               for n in set(old.sections) | set(new.sections)):
            # all closed before any is set up again: a collector may set process-wide state
            # (NVML's initialisation) that closing releases
            for c in self.collectors:
                self._close(c)
            self.collectors = self._collectors(new)
            self._checks.clear()
        from .settings import hour_retention_seconds
        self.store.raw_retention = new.storage.raw_retention
        self.store.minute_retention = new.storage.minute_retention
        self.store.hour_retention = hour_retention_seconds(new)
        logging.getLogger().setLevel(new.logging.level.upper())
        self._retire(retired)
        self._reschedule(old, new, retired)
        self._reload_exporter(old, new)
        log.info("configuration reloaded from %s: %s changed", new.source, ", ".join(changed))

    def _reschedule(self, old: Config, new: Config, retired: list) -> None:
        from .jobs import scheduling
        scheduling.reschedule(self.scheduler, self.jobs, new)
        kept = {t.name for t in self.tasks}
        for task in retired:
            if task.name not in kept:
                self.loop.remove(task.name)
                if self.scheduler.get_job(task.name) is not None:
                    self.scheduler.remove_job(task.name)
        self._schedule_sampling()
        self._schedule_tasks()
        if new.sampling.interval != old.sampling.interval and self._tick_began is not None:
            self.loop.regrid(self._tick_began)   # the new interval's grid goes on from the last tick

    def _reload_exporter(self, old: Config, new: Config) -> None:
        from . import exporter
        if new.exporter.listen == old.exporter.listen:
            if self.exporter is not None:
                exporter.update(self.exporter, new)  # the stale window, and TLS read anew
            return
        if self.exporter is not None:
            exporter.stop(self.exporter)   # first: the new address may take the same port
        self.exporter = exporter.start(new, self.store.path, new.metrics)

    def _retire(self, parts: list) -> None:
        """Close parts no longer in use off the main loop's thread: the alert task's hooks in flight
        get their grace there, as at a stop."""
        if parts:
            threading.Thread(target=lambda: [self._close(p) for p in parts], name="ishowd-retire",
                             daemon=True).start()

    def _close(self, part) -> None:
        try:
            part.close()
        except Exception as exc:
            log.warning("closing %s: %s", part.name, exc)

    def close(self) -> None:
        self._closing.set()
        if getattr(self, "control", None) is not None:
            self.control.close()
        self.jobs.stop()
        if getattr(self, "exporter", None) is not None:
            from .exporter import stop
            stop(self.exporter)
        for part in (*self.collectors, *self.tasks):
            self._close(part)
        self.store.close()
        self.notifier.close()


_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def syslog_priority(levelno: int) -> int:
    return next((prio for level, prio in _PRIORITIES if levelno >= level), 7)


class JournalFormatter(logging.Formatter):
    """Every line of a record led by its syslog priority (``<4>``), which journald takes off and
    files it under (``journalctl -p warning``): a traceback's lines keep the priority too."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))


def stderr_is_journal() -> bool:
    """Whether stderr is the journal's stream systemd connected (``JOURNAL_STREAM`` names its
    device and inode: a variable inherited into a terminal does not match it)."""
    dev, _, ino = os.environ.get("JOURNAL_STREAM", "").partition(":")
    if not (dev.isascii() and dev.isdigit() and ino.isascii() and ino.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    # Under systemd the journal stamps each line; elsewhere we do.
    handler.setFormatter(JournalFormatter("%(levelname)s %(name)s: %(message)s") if stderr_is_journal()
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _parser():
    # argparse, not click as ishowctl: the daemon has one command, and click is a megabyte of its memory
    import argparse

    top = argparse.ArgumentParser(prog="ishowd", description="ishowd: the iShowTTS monitoring and maintenance daemon.")
    top.add_argument("--version", action="store_true", help="Show the version and exit.")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", help="run (the only one)")
    run = commands.add_parser("run", help="Run the daemon in the foreground (what systemd starts).",
                              description="Run the daemon in the foreground (what systemd starts).")
    run.add_argument("--config", dest="config_path", metavar="PATH",
                     help="Config file (default: $ISHOWD_CONFIG, else /etc/ishowd/ishowd.toml, else built-in defaults).")
    run.add_argument("--once", action="store_true",
                     help="Take one sample from every collector, run every task once, write, exit.")
    return top


def run(config_path: Optional[str], once: bool) -> None:
    """Run the daemon in the foreground (what systemd starts)."""
    from .catalog import load_config
    from .errors import exit_for

    try:
        config = load_config(config_path)
        _setup_logging(config.logging.level)
        daemon = Daemon(config)
    except Exception as exc:
        mapped = exit_for(exc)
        if mapped is None:
            raise
        print(("<3>" if stderr_is_journal() else "") + f"ishowd: {mapped[1]}", file=sys.stderr)
        sys.exit(mapped[0])
    try:
        if once:
            daemon.run_once()
        else:
            daemon.run_forever()
    finally:
        daemon.close()
    log.info("stopped")
    sys.exit(daemon.exit_code)


def main(argv: Optional[list[str]] = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)      # a usage error: the usage and exit 2
    if args.version:
        from . import __version__
        print(f"ishowd, version {__version__}")
    elif args.command == "run":
        run(args.config_path, args.once)
    else:
        parser.print_help()
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
