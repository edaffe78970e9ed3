"""Batches: run planned jobs in parallel worker processes, keep the score.

No CLI here: :mod:`lrn_cli.discovery` finds the inputs and plans the jobs (its names are
re-exported here: ``batch.discover``, ``batch.plan``, ``batch.preflight``...),
:func:`run_jobs` calls back once per finished file, :class:`Report` owns the summary and the
exit code.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from lrn_cli.discovery import (  # re-exported: the batch API in one place
    STDIN,
    Job,
    Problem,
    Source,
    default_patterns,
    discover,
    plan,
    preflight,
)
from lrn_cli.errors import one_line
from lrn_cli.pipeline import JobResult, ReadOptions, Settings, WriteOptions, run_job

__all__ = ["STDIN", "Job", "Problem", "Report", "Source", "default_patterns", "discover",
           "plan", "preflight", "run_jobs"]

@dataclass
class Report:
    """Outcomes of a batch: counts, the summary line and the exit code."""

    processed: int = 0
    skipped: int = 0
    failed: int = 0
    interrupted: bool = False
    not_started: int = 0  # after Ctrl-C, or a stop (--fail-fast): inputs never run
    started: float = field(default_factory=time.perf_counter)
    elapsed: float = 0.0

    def add(self, result: JobResult) -> None:
        """Count one finished job."""
        if result.status == "ok":
            self.processed += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1

    def finish(self) -> None:
        """Stop the clock."""
        self.elapsed = time.perf_counter() - self.started

    @property
    def return_code(self) -> int:
        """0 when everything worked, 1 when any input failed, 130 when interrupted."""
        if self.interrupted:
            return 130
        return 1 if self.failed else 0

    def __str__(self) -> str:
        rate = self.processed / self.elapsed if self.elapsed > 0 else 0.0
        text = (f"{self.processed} processed, {self.skipped} skipped, {self.failed} failed "
                f"in {self.elapsed:.2f} s ({rate:.1f} files/s)")
        if self.interrupted:
            text = f"interrupted: {text}, {self.not_started} not started"
        elif self.not_started:  # stopped early (--fail-fast)
            text = f"{text}, {self.not_started} not started"
        return text


#: In a worker process: set by the parent to stop (Ctrl-C, --fail-fast); jobs not yet started
#: then return at once, unrun. (Futures are never cancelled: in CPython 3.11 a pool that
#: breaks with a cancelled future pending crashes its manager thread, and waits hang.)
_STOP = None
#: In a worker process: what every job of the run shares (settings, read and write options,
#: the protected inputs, want_traceback), sent once with the pool's initializer rather than
#: with each job (the protected inputs grow with the batch: per job that was quadratic).
_JOB_ARGS: tuple = ()


def _init_worker(threads: int, stop=None, job_args: tuple = ()) -> None:
    import signal

    global _STOP, _JOB_ARGS
    _STOP = stop
    _JOB_ARGS = job_args
    # Ctrl-C reaches the whole process group: the parent decides; workers finish their file.
    # The parent started this process with SIGINT blocked (see _starting_workers), so a Ctrl-C
    # during start-up (imports take a while) is pending, not fatal; ignoring it discards it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    from lrn_cli.core import set_threads

    set_threads(threads)


def _run_one(job: Job, settings, ropts, wopts, protect, want_tb) -> JobResult:
    return run_job(job.source, job.output, settings, ropts, wopts, protect=protect,
                   want_traceback=want_tb)


def _run_pooled(job: Job) -> JobResult | None:
    """In a worker: `_run_one` with the run's shared arguments, unless the parent has
    stopped the run (then None)."""
    if _STOP is not None and _STOP.is_set():
        return None
    return _run_one(job, *_JOB_ARGS)


@contextmanager
def _starting_workers() -> Iterator[None]:
    """Block SIGINT while the pool may start worker processes (they inherit the mask).

    A Ctrl-C meanwhile stays pending: a worker discards it once its initializer ignores
    SIGINT, and this process gets it (as `KeyboardInterrupt`) when the block ends. The
    Python-level handler is deferred too, for a Ctrl-C delivered to another thread of this
    process (a progress bar's), so that nothing interrupts the executor half-way.
    """
    import signal

    from lrn_cli.atomic import defer_interrupts

    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        with defer_interrupts():
            yield
        return
    # Started now, before the mask is set: started from a worker's start it would unblock
    # SIGINT in this thread (CPython's resource_tracker.ensure_running ends with SIG_UNBLOCK).
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    with defer_interrupts():
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            # A Ctrl-C that arrived meanwhile is delivered here, to the deferring handler.
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _death_cause(processes: list) -> str:
    """How a broken pool's worker died, from the exit codes (the others got SIGTERM)."""
    import signal

    for code in (getattr(p, "exitcode", None) for p in processes):
        if code is None or code == 0 or code == -signal.SIGTERM:
            continue
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"killed by {name}" + (", out of memory?" if -code == signal.SIGKILL else "")
        return f"exit status {code}"
    return "out of memory, or a crash?"


def _died(job: Job, cause: str, *, alone: bool) -> JobResult:
    why = "worker process died while processing it" if alone else \
        "worker process died while this or another file was being processed"
    return JobResult(job.source, job.output, "failed", error=f"{job.source}: {why} ({cause})")


def run_jobs(jobs: list[Job], settings: Settings, ropts: ReadOptions, wopts: WriteOptions, *,
             workers: int, on_result: Callable[[JobResult], bool], protect=(),
             want_traceback: bool = False) -> int:
    """Run ``jobs``, ``workers`` processes at a time; ``on_result`` returns False to stop.

    Each worker process runs Numba with ``cores // workers`` threads, so the machine is
    used fully without oversubscription. ``on_result`` is called once per job that ran, in
    the order they finish; a Ctrl-C never lands half-way through it (it is delivered after).

    Returns the number of jobs not started: 0 unless ``on_result`` asked to stop (jobs
    already running are finished and reported, the others are not started). On Ctrl-C,
    every job already running is finished and reported, then `KeyboardInterrupt` is
    re-raised with that number as its ``not_started`` attribute.

    A worker process that dies (the OOM killer, a crash in native code) breaks its pool: a
    new pool takes over, the jobs that were in flight are retried one at a time, and a job
    that kills its worker again, alone, is reported failed ("worker process died ...").
    """
    if workers <= 1 or len(jobs) <= 1:
        return _run_serial(jobs, (settings, ropts, wopts, protect, want_traceback), on_result)
    return _PoolRun(jobs, (settings, ropts, wopts, protect, want_traceback), workers,
                    on_result).run()


def _run_serial(jobs: list[Job], args: tuple, on_result: Callable[[JobResult], bool]) -> int:
    from lrn_cli.atomic import defer_interrupts, hold_interrupts

    for i, job in enumerate(jobs):
        recorded = False
        try:
            # A Ctrl-C while the output gets its name is held until the file is recorded.
            with hold_interrupts():
                result = _run_one(job, *args)
                with defer_interrupts():
                    recorded = True
                    go_on = on_result(result)
        except KeyboardInterrupt as exc:
            exc.not_started = len(jobs) - i - recorded  # type: ignore[attr-defined]
            raise
        if not go_on:
            return len(jobs) - i - 1
    return 0


#: Pools that may break in a row, with no job finishing in between, before giving up.
_MAX_BROKEN_POOLS = 4


class _PoolRun:
    """One parallel run of :func:`run_jobs` (the state its steps share)."""

    def __init__(self, jobs: list[Job], args: tuple, workers: int,
                 on_result: Callable[[JobResult], bool]) -> None:
        import multiprocessing

        self.ctx = multiprocessing.get_context("spawn")
        self.queue: deque[Job] = deque(jobs)  # not submitted yet
        self.suspects: deque[Job] = deque()  # in flight when a pool broke: retried alone
        self.inflight: dict[Future, tuple[Job, bool]] = {}  # -> (job, ran alone)
        self.broken: list[tuple[Job, bool]] = []  # lost with a broken pool: (job, alone)
        self.cause = "out of memory, or a crash?"  # how the last broken pool's worker died
        self.args = args
        self.workers = workers
        self.threads = max(1, (os.cpu_count() or 1) // workers)
        self.on_result = on_result
        self.pool: ProcessPoolExecutor | None = None
        self.stop_event: Any = None  # a multiprocessing Event, made with the pool
        self.stopped = False
        self.unrun = 0  # submitted, handed back unrun after the stop
        self.broken_pools = 0  # in a row, without any job finishing

    def not_started(self) -> int:
        return len(self.queue) + len(self.suspects) + self.unrun

    # ----------------------------------------------------------------- the loop
    def run(self) -> int:
        try:
            while True:
                if not self.stopped and (self.queue or self.suspects):
                    if self.pool is None:
                        self.stop_event = self.ctx.Event()
                        self.pool = ProcessPoolExecutor(
                            max_workers=self.workers, mp_context=self.ctx,
                            initializer=_init_worker,
                            initargs=(self.threads, self.stop_event, self.args))
                    if not self._submit() and not self.inflight:
                        self._after_break()  # broke while idle: nothing in flight says so
                        continue
                if not self.inflight:
                    break
                done, _ = wait(self.inflight, return_when=FIRST_COMPLETED)
                self._collect(done)
                if self.broken:
                    # Every other job in flight fails with the pool: gather them first.
                    self._collect(wait(self.inflight).done)
                    self._after_break()
        except KeyboardInterrupt as exc:
            self._drain()
            exc.not_started = self.not_started()  # type: ignore[attr-defined]
            self._close(quietly=True)
            raise
        except BaseException:
            self._close(quietly=True)
            raise
        self._close()
        return self.not_started()

    def _close(self, *, quietly: bool = False) -> None:
        pool, self.pool = self.pool, None
        while pool is not None:
            try:
                pool.shutdown(wait=True)
                return
            except KeyboardInterrupt:
                if not quietly:
                    raise
                # Already interrupted: the workers are idle, this takes no time.

    def _submit(self) -> bool:
        """Keep the pool busy (a suspect runs alone); False if the pool turned out broken."""
        assert self.pool is not None
        with _starting_workers():  # submit() may start workers: they must not see Ctrl-C
            while True:
                if self.suspects:
                    if self.inflight:
                        return True
                    source, alone = self.suspects, True
                elif self.queue and len(self.inflight) < 2 * self.workers:
                    source, alone = self.queue, False
                else:
                    return True
                try:
                    fut = self.pool.submit(_run_pooled, source[0])
                except BrokenProcessPool:
                    return False
                self.inflight[fut] = (source.popleft(), alone)
                if alone:
                    return True

    def _collect(self, done: Iterable[Future]) -> None:
        """Report the finished futures; keep the jobs of those that broke the pool."""
        from lrn_cli.atomic import defer_interrupts

        for fut in done:
            if fut not in self.inflight:
                continue
            with defer_interrupts():  # a Ctrl-C now waits until this result is recorded
                job, alone = self.inflight.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    self.broken.append((job, alone))
                    continue
                except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
                    result = JobResult(job.source, job.output, "failed",
                                       error=one_line(exc, job.source))
                if result is None:  # handed back unrun after the stop
                    self.unrun += 1
                    continue
                self.broken_pools = 0
                self._report(result)

    def _report(self, result: JobResult) -> None:
        from lrn_cli.atomic import defer_interrupts

        with defer_interrupts():  # never half-recorded (nests in _collect's)
            go_on = self.on_result(result)
        if not go_on:
            self._stop()

    def _stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            if self.stop_event is not None:
                self.stop_event.set()  # the jobs queued in the workers come back unrun

    @staticmethod
    def _processes(pool: ProcessPoolExecutor) -> list:
        """The pool's worker processes, for their exit codes (best effort: private)."""
        return list((getattr(pool, "_processes", None) or {}).values())

    def _after_break(self) -> None:
        """The pool died: replace it; retry its jobs, alone, or fail them if they were."""
        self.broken_pools += 1
        pool, self.pool = self.pool, None
        if pool is not None:
            processes = self._processes(pool)
            pool.shutdown(wait=True)
            self.cause = _death_cause(processes)
        while self.broken:
            job, alone = self.broken.pop(0)
            if alone or self.stopped:
                self._report(_died(job, self.cause, alone=alone))
            else:
                self.suspects.append(job)
        if self.broken_pools >= _MAX_BROKEN_POOLS:
            # Workers die whatever they run (or cannot start): do not go on file by file.
            why = (f"not run: {self.broken_pools} worker pools in a row died before "
                   "finishing a file")
            while (self.suspects or self.queue) and not self.stopped:
                job = (self.suspects or self.queue).popleft()
                self._report(JobResult(job.source, job.output, "failed",
                                       error=f"{job.source}: {why}"))

    def _drain(self) -> None:
        """After Ctrl-C: nothing new starts; report everything that finishes."""
        self._stop()
        while self.inflight or self.broken:
            try:
                if self.inflight:
                    done, _ = wait(self.inflight, return_when=FIRST_COMPLETED)
                    self._collect(done)
                if self.broken and self.pool is not None:
                    self.cause = _death_cause(self._processes(self.pool))
                while self.broken:
                    job, alone = self.broken.pop(0)
                    self._report(_died(job, self.cause, alone=alone))
            except KeyboardInterrupt:
                # Another Ctrl-C: the workers finish their files anyway (this process waits
                # for them on its way out), so keep recording what they write.
                continue
