"""`flowspec chat` through a pseudo-terminal, `flowspec run` on a WAV file, `serve` usage errors."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from flowspec.audio import AudioFormat, read_wav, write_wav
from flowspec.cli import main

ROOT = Path(__file__).resolve().parents[2]


def offline_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}


def read_until(fd: int, marker: str, seen: list[str], polls: int = 600) -> str:
    """Read the terminal until `marker` appears after what `seen` already holds."""
    start = len("".join(seen))
    for _ in range(polls):
        text = "".join(seen)
        if marker in text[start:]:
            return text[start:]
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen.append(os.read(fd, 4096).decode(errors="replace"))
            except OSError:
                break
    raise AssertionError(f"never saw {marker!r}; the terminal shows {''.join(seen)!r}")


def test_chat_answers_typed_input_in_a_terminal() -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "flowspec.cli", "chat", "specs/text-chat.yaml"], cwd=ROOT,
        stdin=terminal, stdout=terminal, stderr=terminal, env=offline_env(), close_fds=True)
    os.close(terminal)
    seen: list[str] = []
    try:
        banner = read_until(controller, "> ", seen)
        assert "emulator" in banner
        os.write(controller, b"Hello, who are you?\n")
        reply = read_until(controller, "\n> ", seen)
        assert "bot: " in reply
        answer = reply.split("bot: ", 1)[1].split("\n", 1)[0]
        assert answer.strip()
        os.write(controller, b"/quit\n")
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)


def test_run_turns_a_wav_question_into_a_wav_answer(tmp_path: Path) -> None:
    rate = 24000
    import numpy as np

    t = np.arange(rate) / rate
    speech = (np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) * 12000).astype("<i2")
    source, target = tmp_path / "question.wav", tmp_path / "answer.wav"
    write_wav(source, AudioFormat("pcm16", rate), speech.tobytes())
    result = subprocess.run(
        [sys.executable, "-m", "flowspec.cli", "run", "specs/voice-assistant.yaml",
         "--in", str(source), "--out", str(target)], cwd=ROOT, env=offline_env(),
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"wrote {target}" in result.stdout
    assert "assistant: " in result.stdout
    fmt, data = read_wav(target)
    assert fmt == AudioFormat("pcm16", 24000) and len(data) > 0


def test_serve_usage_errors(tmp_path: Path, capsys: object) -> None:
    assert main(["serve", "specs/voice-assistant.yaml", "--workers", "0"]) == 2
    assert main(["serve", "specs/voice-assistant.yaml", "--workers", "2", "--port", "0"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("flowspec: 1\nname: x\nnodes: {}\n")
    assert main(["serve", str(bad)]) == 1
    assert main(["run", "specs/voice-assistant.yaml", "--in", str(tmp_path / "nope.wav")]) == 2


def test_run_refuses_what_cannot_be_a_batch_call(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    answer = tmp_path / "answer.wav"
    cases = [
        # No caller audio: a usage error, not a run that waits forever.
        (["run", "specs/voice-assistant.yaml"], "give the caller's audio with --in"),
        (["run", "specs/voice-assistant.yaml", "--out", str(answer)], "--in"),
        # A text bot cannot take a WAV as its caller.
        (["run", "specs/text-chat.yaml", "--in", str(tmp_path / "q.wav")],
         "sends its model no audio"),
        # Not a WAV at all.
        (["run", "specs/voice-assistant.yaml", "--in", "specs/text-chat.yaml"],
         "not a WAV file"),
    ]
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("flowspec run: ") and message in err, err
        assert "Traceback" not in err
    assert not answer.exists()


def test_run_reads_a_float_wav(tmp_path: Path) -> None:
    import numpy as np

    rate = 16000
    t = np.arange(rate) / rate
    speech = (np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) * 0.4).astype("<f4")
    block = 4
    fmt = (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little") \
        + (rate * block).to_bytes(4, "little") + block.to_bytes(2, "little") \
        + (32).to_bytes(2, "little")
    body = b"WAVEfmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + \
        len(speech.tobytes()).to_bytes(4, "little") + speech.tobytes()
    source, target = tmp_path / "question.wav", tmp_path / "answer.wav"
    source.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    result = subprocess.run(
        [sys.executable, "-m", "flowspec.cli", "run", "specs/voice-assistant.yaml",
         "--in", str(source), "--out", str(target)], cwd=ROOT, env=offline_env(),
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert read_wav(target)[1]


def test_a_missing_file_is_exit_2_everywhere(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.yaml")
    for command in (["validate", missing], ["graph", missing], ["serve", missing],
                    ["chat", missing], ["run", missing, "--in", missing],
                    ["plan", missing, missing], ["patch", missing, "--set", "/name=x"],
                    ["schema", "--for", missing]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert err.startswith(f"flowspec {command[0]}: ") or command[0] == "validate", err


def test_var_fills_a_run_and_a_chat_and_a_bad_one_is_refused_first(tmp_path: Path) -> None:
    rate = 24000
    import numpy as np

    t = np.arange(rate) / rate
    speech = (np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) * 12000).astype("<i2")
    source, target = tmp_path / "question.wav", tmp_path / "answer.wav"
    write_wav(source, AudioFormat("pcm16", rate), speech.tobytes())
    spec = tmp_path / "greeter.yaml"
    spec.write_text((ROOT / "specs" / "voice-assistant.yaml").read_text() + """
variables:
  customer_name: {default: there}
conversation:
  opening: {say: "Good morning, {{customer_name}}."}
""")
    result = subprocess.run(
        [sys.executable, "-m", "flowspec.cli", "run", str(spec), "--in", str(source),
         "--out", str(target), "--var", "customer_name=Ann"], cwd=ROOT, env=offline_env(),
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "assistant: Good morning, Ann." in result.stdout
    chat = subprocess.run(
        [sys.executable, "-m", "flowspec.cli", "chat", "specs/text-chat.yaml", "--var",
         "customer=Al"], cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        timeout=60, input="")
    assert chat.returncode == 2
    assert "variable 'customer' is not declared by this bot" in chat.stderr
    assert "Traceback" not in chat.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "flowspec.cli", "run", str(spec), "--in", str(source),
         "--var", "customer_name"], cwd=ROOT, env=offline_env(), capture_output=True,
        text=True, timeout=60)
    assert bad.returncode == 2 and "is not NAME=VALUE" in bad.stderr
