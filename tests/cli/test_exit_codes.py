"""The README's exit-code table names every code a command can exit with, and the commands
exit with what it says."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from flowspec.cli import main

ROOT = Path(__file__).resolve().parents[2]


def documented() -> dict[int, str]:
    text = (ROOT / "README.md").read_text()
    table = text.split("| exit | means |", 1)[1].split("\n\n", 1)[0]
    return {int(code): meaning for code, meaning in
            re.findall(r"^\| (\d+) \| (.+) \|$", table, re.M)}


def exit_codes_in_source() -> set[int]:
    """Every `EXIT_* = n` constant and every literal a command's `main` returns."""
    codes: set[int] = set()
    for path in (ROOT / "flowspec").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                names = [t for t in node.targets if isinstance(t, ast.Name | ast.Tuple)]
                flat = [n.id for t in names for n in
                        (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(n, ast.Name)]
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                for name, value in zip(flat, values, strict=False):
                    if name.startswith("EXIT_") and isinstance(value, ast.Constant) \
                            and isinstance(value.value, int):
                        codes.add(value.value)
        if path.name == "cli.py":
            for node in ast.walk(tree):
                if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant) \
                        and isinstance(node.value.value, int):
                    codes.add(node.value.value)
    return codes


def test_every_exit_code_is_documented() -> None:
    assert set(documented()) == exit_codes_in_source() == {0, 1, 2, 130, 141}


@pytest.mark.parametrize(("args", "code"), [
    (["serve", "specs/text-chat.yaml", "--port", "99999"], 2),
    (["validate", "specs/text-chat.yaml"], 0),
    (["run", "specs/voice-assistant.yaml"], 2),
    (["schema", "--check", "README.md"], 1),
])
def test_commands_exit_as_the_table_says(args: list[str], code: int,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    try:
        result = main(args)
    except SystemExit as exc:  # argparse refuses a bad value itself
        result = int(exc.code or 0)
    assert result == code
    meaning = documented()[code]
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code:
        # argparse's own refusals end with `flowspec serve: error: ...`
        assert err.startswith(f"flowspec {args[0]}: ") or \
            f"flowspec {args[0]}: error: " in err, err
        assert meaning
