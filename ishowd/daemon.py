"""``ishowd``: the daemon systemd runs.

Each tick runs the due collectors (a collector that fails loses its own
metrics for that tick, never the tick), writes one transaction, seals and
prunes the store when an hour has passed, then runs the after-tick tasks.
Other tasks (log ingestion, health probes, maintenance jobs) run on their
own schedules in the worker pool. SIGTERM/SIGINT finish what is in flight,
close the store and exit 0; SIGHUP is logged and ignored.
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

import click

from .collectors import Collector, TickContext
from .config import Config
from .metrics import Sample
from .specs.daemon import COLLECTOR_DURATION, COLLECTOR_SUCCESS
from .store.errors import is_storage_failure

log = logging.getLogger("ishowd")


class Daemon:
    def __init__(self, config: Config):
        from . import catalog
        from .store.writer import open_store

        self.config = config
        self.store = open_store(config)
        self.collectors: list[Collector] = []
        for name, cls in sorted(catalog.collectors().items()):
            self.collectors.append(cls(config))
        self.collectors = [c for c in self.collectors if self._setup(c)]
        self.tasks = []
        for name, cls in sorted(catalog.tasks().items(), key=lambda kv: (kv[1].order, kv[0])):
            task = cls(config, self.store)
            if self._setup(task):
                self.tasks.append(task)
        from .jobs.runner import JobRunner, set_up
        jobs, unavailable = set_up(config)
        for name, reason in unavailable.items():
            log.info("job %s: not scheduled on this host (%s)", name, reason)
        self.jobs = JobRunner(config, self.store, jobs, unavailable)
        self.ticks = 0
        self.exit_code = 0
        self._warned: set[tuple[str, str]] = set()
        self._tick_lock = threading.Lock()

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
            for s in got:
                if s.metric not in c.metrics or set(s.labels) != set(s.metric.labels) \
                        or not isinstance(s.value, (int, float)) or not math.isfinite(s.value):
                    self._warn_once(f"collector {c.name}", f"dropped a malformed sample of {s.metric.name}")
                    continue
                batch.append(s)
            labels = {"collector": c.name}
            batch.append(Sample(COLLECTOR_DURATION, round(took, 6), labels))
            batch.append(Sample(COLLECTOR_SUCCESS, ok, labels))
        batch += self.jobs.samples(now)
        return batch

    def tick(self, now: Optional[float] = None, *, after: bool = True) -> int:
        """Sample, write, maintain, run after-tick tasks (unless ``after`` is False). Returns the samples written."""
        with self._tick_lock:
            now = time.time() if now is None else now
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
        return written or 0

    def _stop(self, why: str) -> None:
        """Stop with exit status 1, said once: systemd starts ishowd again (``Restart=on-failure``)."""
        if self.exit_code:
            return
        self.exit_code = 1
        log.error("%s", why)
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None:
            scheduler.request_stop()

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
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.triggers.cron import CronTrigger

        from .schedule import MonotonicInterval, SteadyScheduler

        interval = self.config.sampling.interval
        from .jobs import scheduling
        sched = SteadyScheduler(executors={"default": ThreadPoolExecutor(4),
                                           scheduling.EXECUTOR: ThreadPoolExecutor(scheduling.WORKERS)},
                                timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1})
        self.scheduler = sched
        trigger = MonotonicInterval(interval, first_delay=0)

        def sample_job() -> None:
            trigger.fired(trigger.slot_now())
            self.tick()

        sched.add_job(sample_job, trigger, id="sample", name="sample", misfire_grace_time=int(interval) or 1)
        for task in self.tasks:
            if task.after_tick:
                continue
            every = task.interval()
            cron = task.cron()
            if every:
                t = MonotonicInterval(every, first_delay=min(every, 1.0))
                sched.add_job(self._task_job(task, t), t, id=task.name, name=task.name,
                              misfire_grace_time=int(every) or 1)
            elif cron:
                sched.add_job(self._run_task, CronTrigger(timezone=cron.pop("timezone", None), **cron),
                              args=(task,), id=task.name, name=task.name, misfire_grace_time=3600)

        def stop(signum, _frame):
            log.info("%s: finishing the work in flight, then exiting", signal.Signals(signum).name)
            self.jobs.stop()  # a job running for an hour must not hold the stop up
            sched.request_stop()

        def hangup(_signum, _frame):
            # SIGHUP's default action ends the process with no clean stop: not ours to take
            log.warning("SIGHUP: reloading the configuration is not supported yet; restart ishowd "
                        "to apply a changed config (sampling goes on)")

        scheduling.add_jobs(sched, self.jobs)
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, hangup)
        from .control import ControlServer, socket_path
        self.control = ControlServer(socket_path(self.store.path), self._run_job_for_operator,
                                     lambda: sorted(self.jobs.jobs))
        self.control.start()
        from .exporter import start as start_exporter
        self.exporter = start_exporter(self.config, self.store.path, self.config.metrics)
        log.info("sampling every %gs into %s with %s; tasks: %s; jobs: %s", interval, self.store.path,
                 ", ".join(c.name for c in self.collectors) or "no collectors",
                 ", ".join(t.name for t in self.tasks) or "none", ", ".join(self.jobs.enabled()) or "none")
        sched.start()  # returns after request_stop() and the jobs in flight have finished

    def _task_job(self, task, trigger):
        def job() -> None:
            trigger.fired(trigger.slot_now())
            self._run_task(task)
        return job

    def _run_job_for_operator(self, name: str, progress) -> dict:
        return self.jobs.run(name, trigger="operator", progress=progress).as_json()

    def close(self) -> None:
        if getattr(self, "control", None) is not None:
            self.control.close()
        self.jobs.stop()
        if getattr(self, "exporter", None) is not None:
            self.exporter.shutdown()
        for part in (*self.collectors, *self.tasks):
            try:
                part.close()
            except Exception as exc:
                log.warning("closing %s: %s", part.name, exc)
        self.store.close()


def _setup_logging(level: str) -> None:
    # Under systemd the journal stamps each line; elsewhere we do.
    fmt = "%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM") \
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=getattr(logging, level.upper()), format=fmt, stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ishowd")
def cli() -> None:
    """ishowd: the iShowTTS monitoring and maintenance daemon."""


@cli.command()
@click.option("--config", "config_path", metavar="PATH",
              help="Config file (default: $ISHOWD_CONFIG, else /etc/ishowd/ishowd.toml, else built-in defaults).")
@click.option("--once", is_flag=True, help="Take one sample from every collector, run every task once, write, exit.")
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
        click.echo(f"ishowd: {mapped[1]}", err=True)
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


def main() -> None:
    cli(prog_name="ishowd")


if __name__ == "__main__":  # pragma: no cover
    main()
