"""Replacing a spec file: one step, symlinks kept, nothing left behind, failures leave it alone."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flowspec.reload.atomic import SUFFIX, replace_file, sweep

ROOT = Path(__file__).resolve().parents[2]
VOICE = (ROOT / "specs" / "voice-assistant.yaml").read_text()


def test_the_file_is_replaced_and_keeps_its_mode(tmp_path: Path) -> None:
    spec = tmp_path / "bot.yaml"
    spec.write_text("old\n")
    spec.chmod(0o640)
    replace_file(spec, "new\n")
    assert spec.read_text() == "new\n"
    assert spec.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["bot.yaml"]


def test_a_symlinked_spec_keeps_its_link_and_its_target_is_replaced(tmp_path: Path) -> None:
    real = tmp_path / "data" / "bot.yaml"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "bot.yaml"
    link.symlink_to(real)
    assert replace_file(link, "new\n") == real.resolve()
    assert link.is_symlink() and link.read_text() == "new\n" and real.read_text() == "new\n"


def test_what_a_killed_writer_left_is_swept_by_the_next_write(tmp_path: Path) -> None:
    spec = tmp_path / "bot.yaml"
    spec.write_text("old\n")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    leftover = tmp_path / f".bot.yaml.{dead.stdout.strip()}.1{SUFFIX}"
    leftover.write_text("half a spe")
    mine = tmp_path / f".bot.yaml.{os.getpid()}.2{SUFFIX}"  # a live writer's: kept
    mine.write_text("in progress")
    other = tmp_path / ".notes.txt.swp"
    other.write_text("not ours")
    replace_file(spec, "new\n")
    assert not leftover.exists() and mine.exists() and other.exists()
    assert sweep(spec) == []


def test_a_failed_write_leaves_the_file_and_no_temporary(tmp_path: Path) -> None:
    spec = tmp_path / "bot.yaml"
    spec.write_text("old\n")
    script = ("import resource, signal, sys\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))\n"
              "from flowspec.reload.atomic import replace_file\n"
              "try:\n"
              f"    replace_file({str(spec)!r}, 'x' * 4096)\n"
              "except OSError as exc:\n"
              "    print('OSError', exc.errno)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, check=True)
    assert done.stdout.startswith("OSError"), done.stdout + done.stderr
    assert spec.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["bot.yaml"]


def _limited_writes() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512, 512))


def test_flowspec_patch_on_a_full_disk_exits_2_with_the_reason(tmp_path: Path) -> None:
    spec = tmp_path / "bot.yaml"
    spec.write_text(VOICE)
    done = subprocess.run(
        [sys.executable, "-m", "flowspec.cli", "patch", str(spec), "--set",
         "/nodes/llm/settings/system_instruction=Be brief."], capture_output=True, text=True,
        cwd=ROOT, preexec_fn=_limited_writes)
    assert done.returncode == 2, done.stderr
    assert "cannot write" in done.stderr and "the file is unchanged" in done.stderr
    assert "Traceback" not in done.stderr
    assert spec.read_text() == VOICE
    assert [p.name for p in tmp_path.iterdir()] == ["bot.yaml"]


def test_flowspec_patch_edits_through_a_symlink(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from flowspec.cli import main

    real = tmp_path / "mounted" / "bot.yaml"
    real.parent.mkdir()
    real.write_text(VOICE)
    link = tmp_path / "bot.yaml"
    link.symlink_to(real)
    assert main(["patch", str(link), "--set",
                 "/nodes/llm/settings/system_instruction=Be brief."]) == 0
    assert link.is_symlink()
    assert "system_instruction: Be brief." in real.read_text()
    assert sorted(p.name for p in real.parent.iterdir()) == ["bot.yaml"]
