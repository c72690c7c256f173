"""Run by tests/test_wheel.py with the Python of a fresh virtualenv holding gridwatch installed
from its wheel without extras: every module imports and every command's --help works, so the shipped
code needs nothing that only the test tools bring. Exits 1 naming what failed."""

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

import gridwatch
from gridwatch.cli import app


def commands(command, path: list[str]):
    """Every command's words, the groups' included (Typer's own click or not)."""
    yield path
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            yield from commands(sub, [*path, name])


def main() -> int:
    failed = []
    modules = [m.name for m in pkgutil.walk_packages(gridwatch.__path__, "gridwatch.")]
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - every failure is reported
            failed.append(f"import {name}: {exc!r}")
    script = Path(sys.executable).with_name("gridwatch")
    top = subprocess.run([str(script), "--help"], capture_output=True, text=True)
    if top.returncode != 0:
        failed.append(f"gridwatch --help: {top.stderr.strip()[-500:]}")
    runner = CliRunner()
    paths = list(commands(typer.main.get_command(app), []))
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        if result.exit_code != 0 or "Usage" not in result.output:
            failed.append(f"gridwatch {' '.join(path)} --help: exit {result.exit_code}: {result.output[-300:]!r} "
                          f"{result.exception!r}")
    for line in failed:
        print(line, file=sys.stderr)
    print(f"plain install: {len(modules)} modules imported, {len(paths)} commands' --help: "
          f"{'ok' if not failed else f'{len(failed)} failed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
