"""Batches: find the inputs, plan their outputs, run them in parallel, keep the score.

No CLI here: :func:`discover` and :func:`plan` return jobs and per-file problems,
:func:`run_jobs` calls back once per finished file, :class:`Report` owns the summary and the
exit code.
"""

from __future__ import annotations

import fnmatch
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from lrn_cli.pipeline import (
    JobResult,
    ReadOptions,
    Settings,
    WriteOptions,
    default_output_suffix,
    input_kind,
    run_job,
)

STDIN = "-"


@dataclass(frozen=True)
class Source:
    """An input file, with the tree it was found in (for mirroring into the output folder)."""

    path: str
    rel: str  # where it goes under an output directory, suffix included


@dataclass(frozen=True)
class Job:
    """One input and the file it will be written to (``None``: write nothing)."""

    source: str
    output: str | None


@dataclass
class Problem:
    """An input or output refused before any work (missing, loop, collision...)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def default_patterns() -> tuple[str, ...]:
    """Files a folder contributes when no ``--glob`` is given: arrays and images."""
    from lrn_cli.images import IMAGE_SUFFIXES

    return tuple(f"*{s}" for s in sorted({".npy", ".npz", *IMAGE_SUFFIXES}))


def _matches(rel: str, patterns: Iterable[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name.lower(), p.lower()) or fnmatch.fnmatch(rel, p)
               for p in patterns)


def _walk(root: Path, problems: list[Problem]) -> Iterator[Path]:
    """Files under ``root`` in sorted order, following directory links but not loops."""
    seen: set[tuple[int, int]] = set()

    def visit(directory: Path) -> Iterator[Path]:
        try:
            st = directory.stat()
        except OSError as exc:
            problems.append(Problem(str(directory), exc.strerror or str(exc)))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen:
            problems.append(Problem(str(directory), "symlink loop (directory already visited)"))
            return
        seen.add(key)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(str(directory), f"cannot list: {exc.strerror or exc}"))
            return
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=True):
                    yield from visit(path)
                    continue
            except OSError as exc:  # e.g. ELOOP on a self-referencing link
                problems.append(Problem(str(path), exc.strerror or str(exc)))
                continue
            yield path

    yield from visit(root)


def _check_regular(path: Path) -> str | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return "broken symlink" if path.is_symlink() else "no such file"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    return None


def discover(inputs: Iterable[str], *, patterns: tuple[str, ...] = (),
             exclude: tuple[str, ...] = ()) -> tuple[list[Source], list[Problem]]:
    """Expand files and folders (recursively) into sources; report what cannot be used."""
    patterns = patterns or default_patterns()
    sources: list[Source] = []
    problems: list[Problem] = []
    for given in inputs:
        if given == STDIN:
            sources.append(Source(STDIN, "stdin"))
            continue
        path = Path(given)
        if path.is_dir() and path.suffix.lower() == ".zarr":
            sources.append(Source(given, path.name))  # a zarr store is one input
            continue
        if path.is_dir():
            for file in _walk(path, problems):
                rel = file.relative_to(path).as_posix()
                if not _matches(rel, patterns) or (exclude and _matches(rel, exclude)):
                    continue
                reason = _check_regular(file)
                if reason:
                    problems.append(Problem(str(file), reason))
                else:
                    sources.append(Source(str(file), rel))
            continue
        reason = _check_regular(path)
        if reason:
            problems.append(Problem(given, reason))
        else:
            sources.append(Source(given, path.name))
    return sources, problems


def _inside(child: Path, parent: Path) -> bool:
    try:
        child.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def plan(sources: list[Source], output: str | None, *, inputs: Iterable[str],
         fmt: str | None = None, allow_input_tree: bool = False,
         single_file: bool | None = None) -> tuple[list[Job], list[Problem]]:
    """Map sources to outputs: ``output`` is a file for one input, else a directory.

    Refuses (per file) two inputs mapping to the same output, and (for all) an output
    folder inside an input folder unless ``allow_input_tree``.
    """
    if output is None:
        return [Job(s.path, None) for s in sources], []
    inputs = list(inputs)
    out = Path(output)
    if single_file is None:
        one = Path(inputs[0]) if len(inputs) == 1 else None
        single_file = (one is not None and (not one.is_dir() or one.suffix.lower() == ".zarr")
                       and len(sources) == 1 and not output.endswith(os.sep)
                       and (not out.is_dir() or out.suffix.lower() == ".zarr"))
    if single_file or output == STDIN:
        return [Job(s.path, output) for s in sources[:1]], []
    if not allow_input_tree:
        for given in inputs:
            if given != STDIN and Path(given).is_dir() and _inside(out, Path(given)):
                return [], [Problem(output, f"is inside the input folder {given}; "
                                    "use another folder or --allow-input-tree")]
    jobs: list[Job] = []
    problems: list[Problem] = []
    taken: dict[str, str] = {}
    for s in sources:
        kind = "npy" if s.path == STDIN else input_kind(s.path)
        rel = Path(s.rel)
        suffix = ".zarr" if s.path.lower().endswith(".zarr") and not fmt else \
            default_output_suffix(kind, s.path, fmt)
        target = out / rel.with_suffix(suffix)
        key = os.path.normcase(os.path.abspath(target))
        if key in taken:
            problems.append(Problem(s.path, f"would write {target}, like {taken[key]}; "
                                    "rename one of them or process them separately"))
            continue
        taken[key] = s.path
        jobs.append(Job(s.path, str(target)))
    return jobs, problems


@dataclass
class Report:
    """Outcomes of a batch: counts, the summary line and the exit code."""

    processed: int = 0
    skipped: int = 0
    failed: int = 0
    interrupted: bool = False
    not_started: int = 0
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
        return text


def _init_worker(threads: int) -> None:
    import signal

    # Ctrl-C reaches the whole process group: the parent decides; workers finish their file.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from lrn_cli.core import set_threads

    set_threads(threads)


def _run_one(job: Job, settings, ropts, wopts, protect, want_tb) -> JobResult:
    return run_job(job.source, job.output, settings, ropts, wopts, protect=protect,
                   want_traceback=want_tb)


def run_jobs(jobs: list[Job], settings: Settings, ropts: ReadOptions, wopts: WriteOptions, *,
             workers: int, on_result: Callable[[JobResult], bool], protect: tuple = (),
             want_traceback: bool = False) -> int:
    """Run ``jobs``, ``workers`` processes at a time; ``on_result`` returns False to stop.

    Each worker process runs Numba with ``cores // workers`` threads, so the machine is
    used fully without oversubscription.  Returns the number of jobs not started (after a
    stop or Ctrl-C, which is re-raised after the running files have finished cleanly).
    """
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            if not on_result(_run_one(job, settings, ropts, wopts, protect, want_traceback)):
                return len(jobs) - i - 1
        return 0
    import multiprocessing

    cores = os.cpu_count() or 1
    threads = max(1, cores // workers)
    ctx = multiprocessing.get_context("spawn")
    pending = iter(jobs)
    running: set[Future] = set()
    started = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads,)) as pool:
        try:
            stop = False
            while True:
                while not stop and len(running) < 2 * workers:
                    job = next(pending, None)
                    if job is None:
                        break
                    running.add(pool.submit(_run_one, job, settings, ropts, wopts, protect,
                                            want_traceback))
                    started += 1
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    if not on_result(fut.result()):
                        stop = True
                if stop and not running:
                    break
        except KeyboardInterrupt:
            for fut in running:
                fut.cancel()
            for fut in running:  # the ones already running finish their file atomically
                if not fut.cancelled():
                    try:
                        on_result(fut.result())
                    except Exception:  # noqa: BLE001 - already interrupted; count it lost
                        pass
            raise
    return len(jobs) - started
