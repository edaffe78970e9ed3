"""The run behind ``lrn apply``: plan, progress, per-file errors, tables, manifest, summary."""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrn_cli.cli.output import (
    Ui,
    csv_text,
    display_name,
    json_text,
    name_hex,
    write_stats_file,
)
from lrn_cli.cli.tables import (
    aggregate_table,
    channel_table,
    comparison_table,
    flat_divisor_note,
    item_document,
    item_rows,
)


@dataclass
class ApplyRun:
    """One invocation of ``lrn apply``."""

    ui: Ui
    settings: Any
    ropts: Any
    wopts: Any
    workers: int
    fmt: str | None
    max_channels: int = 8
    results: list = field(default_factory=list)
    # set while planning (execute): input order of the rows, and how reports are written
    _order: dict = field(default_factory=dict, init=False)
    _report_overwrite: bool = field(default=False, init=False)
    _protect: Any = field(default=(), init=False)

    # ------------------------------------------------------------------ planning
    def execute(self, inputs: list[str], output: str | None, *, out_suffix: str | None,
                skip_existing: bool, dry_run: bool, patterns, exclude, allow_input_tree: bool,
                fail_fast: bool, manifest: str | None, stats_out: str | None,
                panel: str | None) -> int:
        """Run everything; return the exit code."""
        from lrn_cli import batch
        from lrn_cli.atomic import check_writable
        from lrn_cli.errors import OutputError
        from lrn_cli.pipeline import JobResult

        ui = self.ui
        sources, problems = batch.discover(inputs, patterns=tuple(patterns),
                                           exclude=tuple(exclude))
        if not sources and not problems:
            ui.warn("no input files found" + (" (nothing matches --glob/--exclude)"
                                              if patterns or exclude else ""))
        jobs, plan_problems = batch.plan(sources, output, inputs=inputs, fmt=out_suffix,
                                         allow_input_tree=allow_input_tree)
        problems += plan_problems
        # rows of the manifest and the tables come in this order (input order), not in the
        # order workers finish; refused inputs first, as they are reported first
        self._order = {}
        for problem in problems:
            self._order.setdefault(problem.path, len(self._order))
        for job in jobs:
            self._order.setdefault("<stdin>" if job.source == batch.STDIN else job.source,
                                   len(self._order))
        if output is None and not dry_run:
            ui.note("no -o given: nothing is written, only the statistics are printed")
        if output is not None and len(jobs) > 1 and output != "-" and Path(output).is_file():
            ui.error(f"{output}: is a file, but {len(jobs)} inputs need a folder")
            return 2
        if panel is not None and len(jobs) != 1:
            ui.error(f"--panel draws one input; got {len(jobs)}")
            return 2
        from lrn_cli.atomic import ProtectedFiles

        # looked up once: every output is checked against every input in O(1)
        protect = ProtectedFiles(s.path for s in sources if s.path != batch.STDIN)
        # a resumed run (--skip-existing) rewrites its own manifest and statistics
        self._report_overwrite = self.wopts.overwrite or skip_existing
        for option, path in (("--manifest", manifest), ("--stats-out", stats_out)):
            if path is None:
                continue
            try:
                check_writable(path, overwrite=self._report_overwrite, protect=protect)
            except OutputError as exc:
                hint = " (--overwrite replaces it)" if "already exists" in exc.reason else ""
                ui.error(f"{option} {exc}{hint}")
                return 1
        report = batch.Report()
        self.report = report
        self._protect = protect
        runnable = []
        for problem in problems:
            self._record(JobResult(problem.path, None, "failed", error=str(problem)))
        for job in jobs:
            if job.output is not None and job.output != "-":
                exists = os.path.lexists(job.output)
                if exists and skip_existing:
                    self._record(JobResult(job.source, job.output, "skipped",
                                           error="output exists"))
                    ui.note(f"{job.source}: skipped, {job.output} exists")
                    continue
                try:
                    check_writable(job.output, overwrite=self.wopts.overwrite, protect=protect)
                except OutputError as exc:
                    self._record(JobResult(job.source, job.output, "failed", error=str(exc)))
                    continue
            runnable.append(job)
        if dry_run:
            for job in runnable:
                ui.write_data(f"{display_name(job.source)} -> "
                              f"{display_name(job.output or '(nothing written)')}\n")
            report.processed = 0
            report.finish()
            ui.info(f"dry run: {len(runnable)} to process, {report.skipped} skipped, "
                    f"{report.failed} refused; nothing written")
            return report.return_code
        if fail_fast and report.failed:
            runnable = []
        stdin_data = sys.stdin.buffer.read() if any(j.source == "-" for j in runnable) else None
        recorded_before_run = len(self.results)
        try:
            self._prepare_kernels(runnable)
            if stdin_data is not None or output == "-" or panel is not None:
                for job in runnable:
                    self._run_inline(job, stdin_data, protect, panel)
            else:
                self._run_batch(runnable, protect, fail_fast)
        except KeyboardInterrupt:
            report.interrupted = True
        report.finish()
        # only runnable jobs can be "not started": inputs refused or skipped before the run
        # were never among them
        # (also after --fail-fast stopped the run)
        report.not_started = max(0, len(runnable) - (len(self.results) - recorded_before_run))
        self._print_results(to_stderr=output == "-")
        if manifest:
            self._write_manifest(manifest)
        if stats_out:
            rows, doc = self._rows_and_document()
            try:
                write_stats_file(stats_out, rows, doc, overwrite=self._report_overwrite,
                                 protect=protect)
            except Exception as exc:  # noqa: BLE001 - report, keep the exit code honest
                ui.error(f"{stats_out}: {exc}")
                return 1
        if len(jobs) + len(problems) > 1 or report.failed or report.interrupted:
            if report.interrupted or not ui.quiet or report.failed:
                ui.line(str(report))
        return report.return_code

    # ------------------------------------------------------------------ running
    def _held(self, run) -> None:
        """``run()`` then record its result, with a Ctrl-C that comes meanwhile (while an
        output gets its name, say) held until the result is recorded: an output on disk is
        always in the report and the manifest."""
        from lrn_cli.atomic import defer_interrupts, hold_interrupts

        with hold_interrupts():
            result = run()
            with defer_interrupts():
                self._record(result)

    def _prepare_kernels(self, jobs) -> None:
        """On a first run (Numba's cache cold for these inputs), say so once and compile the
        kernels the jobs need here, before any worker pool starts: once, instead of in every
        worker at the same time (:mod:`lrn_cli.warmup`)."""
        from lrn_cli import warmup
        from lrn_cli.errors import LrnError

        plan = warmup.plan_for_inputs([job.source for job in jobs], self.settings, self.ropts,
                                      self.wopts)
        if plan is None:
            return
        note = warmup.first_run_note(plan)
        if note is None:
            return
        self.ui.note(note)
        try:
            warmup.run_plan(plan)  # writes the stamp: no note next time
        except LrnError:
            pass  # bad parameters: every job reports them

    def _run_inline(self, job, stdin_data, protect, panel) -> None:
        self._held(lambda: self._inline_result(job, stdin_data, protect, panel))

    def _inline_result(self, job, stdin_data, protect, panel):
        from lrn_cli.pipeline import run_job

        data = stdin_data if job.source == "-" else None
        name = "<stdin>" if job.source == "-" else job.source
        result = run_job(name, job.output if job.output != "-" else None, self.settings,
                         self.ropts, self.wopts, data=data, protect=protect,
                         want_traceback=self.ui.traceback, keep_output=True,
                         keep_arrays=panel is not None)
        if result.status == "ok" and job.output == "-" and len(result.items) != 1:
            # stdout holds one .npy, as -o x.npy does: refuse, never drop arrays silently
            result.status = "failed"
            result.error = (f"{name}: input has {len(result.items)} arrays: write .npz, or "
                            "pick one with --key")
            result.items = []
        if result.status == "ok" and job.output == "-":
            from lrn_cli.atomic import defer_interrupts

            with defer_interrupts(hold=True):  # a Ctrl-C waits: no half array on stdout
                self._write_stdout_npy(result.items[0].output)
            result.output = "-"
        if result.status == "ok" and panel is not None:
            self._draw_panel(result, panel, data)
        return result

    @staticmethod
    def _write_stdout_npy(array) -> None:
        """``-o -``: the array as .npy on stdout; a reader that went away is no error."""
        import numpy as np

        from lrn_cli.cli.output import broken_pipe_guard

        # serialize first: ndarray.tofile (inside np.save) reports a closed pipe as a bare
        # OSError, and a half-written array is no use to anyone anyway
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=False)
        with broken_pipe_guard():
            sys.stdout.buffer.write(buf.getbuffer())
            sys.stdout.buffer.flush()

    def _draw_panel(self, result, panel: str, data) -> None:
        from lrn_cli.errors import LrnError
        from lrn_cli.panel import draw_panel_for

        try:
            draw_panel_for(result, panel, self.settings, from_stdin=data is not None,
                           overwrite=self.wopts.overwrite,
                           png_compression=self.wopts.png_compression)
            self.ui.note(f"panel written to {panel}")
        except LrnError as exc:
            result.status = "failed"
            result.error = str(exc)
        finally:  # drawn: the input and divisor arrays are not needed any more
            for item in result.items:
                item.input_array = item.divisor_array = None

    def _run_batch(self, jobs, protect, fail_fast: bool) -> None:
        from lrn_cli import batch

        ui = self.ui
        total = len(jobs)
        show_bar = total > 1 and not ui.quiet and ui.err.is_terminal
        workers = min(self.workers, total) if total else 1
        if total == 1 or workers == 1:
            from lrn_cli.core import set_threads

            set_threads(None)
        if total == 1:
            self._run_single(jobs[0], protect)
            return
        progress = None
        task = None
        if show_bar:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            progress = Progress(TextColumn("[progress.description]{task.description}"),
                                BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                TextColumn("ETA"), TimeRemainingColumn(),
                                console=ui.err, transient=True)
            task = progress.add_task("lrn", total=total, rate="")

        def on_result(result) -> bool:
            self._record(result, progress)
            if progress is not None and task is not None:
                elapsed = progress.tasks[0].elapsed or 0.0
                done = progress.tasks[0].completed + 1
                rate = f"{done / elapsed:.1f} files/s" if elapsed > 0 else ""
                progress.update(task, advance=1, rate=rate)
            return not (fail_fast and result.status == "failed")

        if progress is not None:
            with progress:
                batch.run_jobs(jobs, self.settings, self.ropts, self.wopts, workers=workers,
                               on_result=on_result, protect=protect,
                               want_traceback=ui.traceback)
        else:
            batch.run_jobs(jobs, self.settings, self.ropts, self.wopts, workers=workers,
                           on_result=on_result, protect=protect, want_traceback=ui.traceback)

    def _run_single(self, job, protect) -> None:
        """One file in this process, with a progress bar over slabs when it streams."""
        from lrn_cli.pipeline import run_job, should_stream

        ui = self.ui
        if not (should_stream(job.source, job.output, self.ropts, mode=self.settings.mode)
                and not ui.quiet
                and ui.err.is_terminal):
            self._held(lambda: run_job(job.source, job.output, self.settings, self.ropts,
                                       self.wopts, protect=protect,
                                       want_traceback=ui.traceback))
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn("streaming"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("samples"), TimeRemainingColumn(), console=ui.err,
                      transient=True) as progress:
            task = progress.add_task("stream", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            self._held(lambda: run_job(job.source, job.output, self.settings, self.ropts,
                                       self.wopts, protect=protect,
                                       want_traceback=ui.traceback, on_progress=on_progress))

    # ------------------------------------------------------------------ bookkeeping
    def _record(self, result, progress=None) -> None:
        self.report.add(result)
        self.results.append(result)
        console_print = progress.console.print if progress is not None else None
        for note in result.notes:
            if not self.ui.quiet:
                msg = display_name(f"note: {result.source}: {note}")
                if console_print:
                    console_print(msg, highlight=False, markup=False, soft_wrap=True)
                else:
                    self.ui.note(f"{result.source}: {note}")
        if result.status == "failed":
            if console_print:
                console_print(display_name(f"error: {result.error}"), highlight=False,
                              markup=False,
                              soft_wrap=True)
            else:
                self.ui.error(result.error or f"{result.source}: failed")
            if result.traceback and self.ui.traceback:
                sys.stderr.write(result.traceback)

    def _ordered_results(self) -> list:
        """The results in input order (the order of the planned jobs), whatever -j did."""
        order = self._order
        return sorted(self.results, key=lambda r: order.get(r.source, len(order)))

    @property
    def manifest_rows(self) -> list[dict]:
        """One row per input (per array of an .npz), in input order."""
        return [row for r in self._ordered_results() for row in self._manifest_rows(r)]

    @staticmethod
    def _output_of(result) -> str | None:
        # a skipped input's output is there from an earlier run: a resumed run's manifest
        # still says where
        return result.output if result.status in ("ok", "skipped") else None

    def _manifest_rows(self, result) -> list[dict]:
        """One row per array (``docs/schema.md``, ``--manifest``): every row has every key."""
        from lrn_cli.records import FLAT_FIELDS, flat_record
        from lrn_cli.schema import document

        output = self._output_of(result)
        base = document(file=display_name(result.source), file_hex=name_hex(result.source),
                        status=result.status,
                        output=None if output is None else display_name(output),
                        error=None if result.error is None else display_name(result.error),
                        seconds=round(result.seconds, 4))
        if not result.items:
            return [dict(base, array=None, layout=None, **dict.fromkeys(FLAT_FIELDS))]
        return [dict(base, array=item.key or None, layout=item.layout,
                     **flat_record(item.before, item.after, item.divisor))
                for item in result.items]

    def _rows_and_document(self):
        rows = []
        files = []
        for r in self._ordered_results():
            for item in r.items:
                rows.extend(item_rows(r.source, item))
            output = self._output_of(r)
            files.append({"file": display_name(r.source),
                          "output": None if output is None else display_name(output),
                          "status": r.status,
                          "error": None if r.error is None else display_name(r.error),
                          "notes": [display_name(n) for n in r.notes],
                          "seconds": r.seconds,
                          "arrays": [item_document(i) for i in r.items]})
        from lrn_cli.schema import document

        s = self.settings
        doc = document(settings={"mode": s.mode, "size": s.size, "alpha": s.alpha,
                                 "beta": s.beta, "k": s.k, "convention": s.convention},
                       files=files,
                       summary={"processed": self.report.processed,
                                "skipped": self.report.skipped,
                                "failed": self.report.failed, "seconds": self.report.elapsed})
        return rows, doc

    def _print_results(self, *, to_stderr: bool) -> None:
        ui = self.ui
        if self.fmt is not None:
            rows, doc = self._rows_and_document()
            text = json_text(doc) if self.fmt == "json" else csv_text(rows)
            if to_stderr:
                sys.stderr.write(text)
            else:
                ui.write_data(text)
            return
        ok = [r for r in self._ordered_results() if r.status == "ok"]
        if len(ok) > 3:
            ui.print_table(self._aggregate_table(ok), to_stderr=to_stderr)
            return
        for r in ok:
            for item in r.items:
                from rich.markup import escape

                label = f"{r.source}{' [' + item.key + ']' if item.key else ''}"
                title = escape(display_name(f"{label} ({item.layout}, {self._settings_text()})"
                                            f"{' -> ' + r.output if r.output else ''}"))
                self._flat_divisor_note(r.source, item)
                ui.print_table(comparison_table(title, item.before, item.after, item.divisor),
                               to_stderr=to_stderr)
                ct = channel_table("per channel", item.before, item.after,
                                   max_channels=self.max_channels)
                if ct is not None and self.max_channels > 0:
                    ui.print_table(ct, to_stderr=to_stderr)

    def _flat_divisor_note(self, source: str, item) -> None:
        note = flat_divisor_note(source, item.divisor.d_min, item.divisor.d_max)
        if note is not None:
            self.ui.note(note)

    def _settings_text(self) -> str:
        return self.settings.text()

    def _aggregate_table(self, ok):
        """Many files: one row per file with the overall figures, then the means."""
        return aggregate_table(ok, self._settings_text())

    def _write_manifest(self, path: str) -> None:
        from lrn_cli.atomic import atomic_write

        rows = self.manifest_rows
        if path.lower().endswith(".jsonl"):
            from lrn_cli.cli.output import _clean

            text = "".join(json.dumps(_clean(row), allow_nan=False) + "\n" for row in rows)
        else:
            text = csv_text(rows)
        try:
            atomic_write(path, lambda fh: fh.write(text.encode()),
                         overwrite=self._report_overwrite,
                         protect=self._protect)
            self.ui.note(f"manifest written to {path} ({len(rows)} rows)")
        except Exception as exc:  # noqa: BLE001
            self.ui.error(f"{path}: {exc}")
            self.report.failed += 1
