"""Run the commands shown in README.md and paste their real output under them.

Every ```console block holds one or more ``$ command`` lines, each followed by its output.
``python docs/readme_tool.py`` reruns every command (in a scratch folder that sees the
repository's ``samples/``) and rewrites the outputs; ``tests/test_readme.py`` runs them all
and checks each exits as expected (0, or the code a trailing ``# exit N`` comment gives).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"```console\n(.*?)```", re.S)
QUICK = re.compile(r"## Quick start.*?```sh\n(.*?)```", re.S)


@dataclass
class Command:
    text: str
    expect: int

    @property
    def shell(self) -> str:
        """The command without its trailing ``# exit N`` comment."""
        return re.sub(r"\s*#\s*exit\s+\d+\s*$", "", self.text)


def parse_line(line: str) -> Command:
    """``$ cmd  # exit 1`` -> Command("cmd  # exit 1", 1)."""
    text = line[2:].strip()
    m = re.search(r"#\s*exit\s+(\d+)\s*$", text)
    return Command(text, int(m.group(1)) if m else 0)


def console_commands(readme: str | None = None) -> list[Command]:
    """Every ``$ ...`` line of the console blocks, with its expected exit code."""
    readme = README.read_text() if readme is None else readme
    return [parse_line(line) for block in BLOCK.findall(readme)
            for line in block.splitlines() if line.startswith("$ ")]


def quick_start(readme: str | None = None) -> list[str]:
    """The two quick-start commands."""
    readme = README.read_text() if readme is None else readme
    m = QUICK.search(readme)
    if not m:
        raise ValueError("README has no '## Quick start' ```sh block")
    return [line.strip() for line in m.group(1).splitlines() if line.strip()]


def scratch() -> Path:
    """A folder where ``samples/`` is the repository's (commands write next to it)."""
    work = Path(tempfile.mkdtemp(prefix="lrn-readme-"))
    (work / "samples").symlink_to(ROOT / "samples")
    return work


def run(cmd: Command, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run one README command with bash, ``lrn`` on PATH, no colour, 150 columns."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS="150", TERM="dumb")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return subprocess.run(["bash", "-c", cmd.text], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def main(argv: list[str] | None = None) -> int:
    """Rerun every console block; ``--only TEXT``: only the blocks whose text holds TEXT
    (e.g. ``--only "lrn explain"``; their commands must not need the other blocks' files)."""
    args = sys.argv[1:] if argv is None else argv
    only = args[args.index("--only") + 1] if "--only" in args else None
    text = README.read_text()
    work = scratch()
    try:
        def fill(match: re.Match) -> str:
            if only is not None and only not in match.group(1):
                return match.group(0)
            lines = []
            for line in match.group(1).splitlines():
                if not line.startswith("$ "):
                    continue
                cmd = parse_line(line)
                res = run(Command(cmd.shell + " 2>&1", cmd.expect), work)
                if res.returncode != cmd.expect:
                    print(f"FAILED ({res.returncode}): {cmd.text}\n{res.stdout}",
                          file=sys.stderr)
                    raise SystemExit(1)
                out = res.stdout.replace(str(work) + os.sep, "").rstrip()
                lines.append(line)
                if out:
                    lines.append(re.sub(r"[ \t]+$", "", out, flags=re.M))
            return "```console\n" + "\n".join(lines) + "\n```"

        README.write_text(BLOCK.sub(fill, text))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
