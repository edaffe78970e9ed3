"""Finding a batch's inputs and planning their outputs (no I/O beyond looking at paths).

:func:`discover` walks files and folders (recursively, refusing loops, devices and the
like per file), :func:`plan` maps each input to its output and refuses collisions, and
:func:`preflight` decides, before any work, which jobs run, which are skipped (their output
exists, ``--skip-existing``) and which are refused (their output may not be written).
:mod:`lrn_cli.batch` runs the jobs.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lrn_cli.pipeline import default_output_suffix, input_kind

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
    from lrn_cli.images import readable_image_suffixes

    return tuple(f"*{s}" for s in sorted({*_COMMON_SUFFIXES, *readable_image_suffixes()}))


def _matches(rel: str, patterns: Iterable[str]) -> bool:
    """Whether the file name (lower case) or the relative path matches one of ``patterns``
    (as :func:`fnmatch.fnmatch` matches them)."""
    return _matcher(tuple(patterns))(rel)


#: What a folder always contributes without ``--glob`` besides images (no need to ask Pillow
#: for these; :func:`default_patterns` lists them too).
_COMMON_SUFFIXES = frozenset({".npy", ".npz"})
#: Sidecar files often found beside images that no Pillow plugin claims (a test checks it):
#: skipped without asking Pillow either.
_NEVER_IMAGES = frozenset({".json", ".txt", ".csv", ".md", ".yaml", ".yml", ".log"})


def _default_match(rel: str) -> bool:
    """:func:`_matches` with :func:`default_patterns`, without importing Pillow's plugins
    (a second or so) for names with the usual suffixes."""
    from lrn_cli.image_formats import IMAGE_SUFFIXES

    name = rel.rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    if dot >= 0 and (name[dot:] in IMAGE_SUFFIXES or name[dot:] in _COMMON_SUFFIXES):
        return True  # "*.png" matches every name ending in ".png"
    if dot >= 0 and name[dot:] in _NEVER_IMAGES:
        return False
    return _matches(rel, default_patterns())


@functools.lru_cache(maxsize=16)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], bool]:
    """One compiled test for all of ``patterns`` (fnmatch per file and pattern took most of
    the time a folder of a few hundred files spent in discovery)."""
    if not patterns:
        return lambda rel: False

    def union(texts: Iterable[str]) -> Callable[[str], re.Match[str] | None]:
        return re.compile("|".join(fnmatch.translate(os.path.normcase(t))
                                   for t in texts)).match

    by_name = union(p.lower() for p in patterns)
    by_path = union(patterns)

    def match(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return (by_name(os.path.normcase(name.lower())) is not None
                or by_path(os.path.normcase(rel)) is not None)

    return match


def _walk(root: Path, problems: list[Problem]) -> Iterator[Path]:
    """Files under ``root`` in sorted order; real folders always, folder links with care.

    Real subfolders are always walked. A link to a folder is judged by where it resolves:

    * to the folder holding the link or any folder above it (above ``root`` too, and any
      folder this walk is inside of): a loop, reported once as "symlink loop (points to an
      enclosing folder)" and not followed;
    * to a folder inside ``root``: not followed, with a problem naming the link, since that
      folder is walked (and its outputs named) under its real path anyway;
    * to a folder outside ``root``: followed (a dataset may link in other disks), once: a
      second link to a folder already walked is skipped with a problem naming the first.
    """
    real_root = root.resolve()
    visited: dict[tuple[int, int], str] = {}  # folders walked through links -> how
    stack: list[tuple[int, int]] = []  # the folders being walked, outermost first

    def shown(real: Path) -> str:
        try:
            rel = real.relative_to(real_root)
        except ValueError:  # pragma: no cover - only called for folders inside root
            return str(real)
        return str(root / rel) if rel.parts else str(root)

    def link_problem(link: Path, directory: Path) -> str | None:
        """Why the folder link ``link`` (in ``directory``) is not followed, or None."""
        try:
            real = link.resolve(strict=True)
            container = directory.resolve(strict=True)
            st = real.stat()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a loop on Python < 3.13
            return getattr(exc, "strerror", None) or str(exc)
        key = (st.st_dev, st.st_ino)
        if key in stack or container == real or container.is_relative_to(real):
            return "symlink loop (points to an enclosing folder)"
        if real == real_root or real.is_relative_to(real_root):
            return (f"skipped: links to {shown(real)}, which is processed under its own "
                    "name")
        if key in visited:
            return f"skipped: already visited via {visited[key]}"
        visited[key] = str(link)
        return None

    def visit(directory: Path) -> Iterator[Path]:
        try:
            st = directory.stat()
        except OSError as exc:
            problems.append(Problem(str(directory), exc.strerror or str(exc)))
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            problems.append(Problem(str(directory), f"cannot list: {exc.strerror or exc}"))
            return
        stack.append((st.st_dev, st.st_ino))
        try:
            for entry in entries:
                path = Path(entry.path)
                try:
                    is_dir = entry.is_dir(follow_symlinks=True)
                except OSError as exc:  # e.g. ELOOP on a self-referencing link
                    problems.append(Problem(str(path), exc.strerror or str(exc)))
                    continue
                if not is_dir:
                    yield path
                    continue
                if entry.is_symlink():
                    why = link_problem(path, directory)
                    if why is not None:
                        problems.append(Problem(str(path), why))
                        continue
                yield from visit(path)
        finally:
            stack.pop()

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
    wanted = (lambda rel: _matches(rel, patterns)) if patterns else _default_match
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
                if not wanted(rel) or (exclude and _matches(rel, exclude)):
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


def preflight(jobs: Iterable[Job], protect, *, overwrite: bool,
              skip_existing: bool) -> list[tuple[Job, str, str | None]]:
    """Decide, before any work, what happens to each job: ``(job, verdict, reason)``.

    ``verdict`` is ``"run"``, ``"skip"`` (its output exists and ``skip_existing``) or
    ``"refuse"`` (``reason``: why its output may not be written, from
    :func:`lrn_cli.atomic.check_writable`: it exists, it is an input...).  Jobs that write
    nothing, or to stdout, always run.
    """
    from lrn_cli.atomic import check_writable
    from lrn_cli.errors import OutputError

    verdicts: list[tuple[Job, str, str | None]] = []
    for job in jobs:
        if job.output is not None and job.output != STDIN:
            if skip_existing and os.path.lexists(job.output):
                verdicts.append((job, "skip", "output exists"))
                continue
            try:
                check_writable(job.output, overwrite=overwrite, protect=protect)
            except OutputError as exc:
                verdicts.append((job, "refuse", str(exc)))
                continue
        verdicts.append((job, "run", None))
    return verdicts
