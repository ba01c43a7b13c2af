"""Write docs/cli.md, the command-line reference, from the typer app itself (so it cannot drift from the code).

    .venv/bin/python scripts/cli_reference.py          # rewrite docs/cli.md
    .venv/bin/python scripts/cli_reference.py --check  # exit 1 if docs/cli.md is out of date (the suite runs this)
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from selfexplain.cli import app

OUT = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _commands(group, prefix: str) -> list[tuple[str, object]]:
    """Every leaf command under ``group`` (typer vendors click, so these are typer's click classes)."""
    out = []
    for name in sorted(group.commands):
        cmd = group.commands[name]
        full = f"{prefix} {name}"
        if hasattr(cmd, "commands"):
            out += _commands(cmd, full)
        else:
            out.append((full, cmd))
    return out


def reference() -> str:
    root = typer.main.get_command(app)
    lines = ["# Command-line reference", "",
             "Every command and option of `selfexplain`, generated from the program itself by "
             "`scripts/cli_reference.py` (the test suite checks that this page is current). `selfexplain COMMAND "
             "--help` prints the same with examples.", ""]
    for name, cmd in _commands(root, "selfexplain"):
        lines += [f"## `{name}`", "", _escape(cmd.help or "").split("  Examples")[0], ""]
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        opts = [p for p in cmd.params if p.param_type_name == "option" and p.name != "help"]
        if args:
            lines += ["| argument | what |", "|---|---|"]
            lines += [f"| `{p.name.upper()}` | {_escape(getattr(p, 'help', '') or '')} |" for p in args]
            lines.append("")
        if opts:
            lines += ["| option | what | default |", "|---|---|---|"]
            for p in opts:
                flags = " / ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
                default = p.default
                shown = "" if default is None or p.is_flag and default is False else f"`{default}`"
                if isinstance(default, (list, tuple)):
                    shown = f"`{', '.join(map(str, default))}`" if default else ""
                lines.append(f"| {flags} | {_escape(p.help or '')} | {shown} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    text = reference()
    if "--check" in sys.argv:
        if not OUT.is_file() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run .venv/bin/python scripts/cli_reference.py", file=sys.stderr)
            sys.exit(1)
    else:
        OUT.write_text(text, encoding="utf-8")
