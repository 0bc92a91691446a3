"""`flowspec run` on the cascaded voice bot (specs/voice-responses.yaml) with no key: a question
spoken by espeak-ng goes through transcription, the Responses model and text-to-speech on the
built-in emulator; both transcripts are printed and sox measures the spoken answer."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flowspec.emulator import voice

ROOT = Path(__file__).resolve().parents[2]


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: `apt-get install -y espeak-ng sox` (.ci/run "
                    "installs them).")
    return path


def sox_info(wav: Path, option: str) -> str:
    return subprocess.run([need("soxi"), option, str(wav)], check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_spoken_question_gets_a_spoken_answer_and_both_transcripts(tmp_path: Path) -> None:
    question, answer = tmp_path / "question.wav", tmp_path / "answer.wav"
    subprocess.run([need("espeak-ng"), "-w", str(question), "What is the weather in Paris?"],
                   check=True)
    asked_s = float(sox_info(question, "-D"))
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "flowspec.cli", "run", "specs/voice-responses.yaml",
         "--in", str(question), "--out", str(answer)], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "emulator" in result.stderr and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    (user,) = [line for line in lines if line.startswith("user: ")]
    (assistant,) = [line for line in lines if line.startswith("assistant: ")]
    assert lines[-1] == f"wrote {answer}"
    # The emulator's transcript describes the turn its VAD cut out of the question.
    heard = re.fullmatch(r"user: \((\d+\.\d) seconds of audio\)", user)
    assert heard is not None, user
    assert abs(float(heard.group(1)) - asked_s) <= 0.6
    said = assistant.removeprefix("assistant: ")
    assert said == f"You said: ({heard.group(1)} seconds of audio)"
    # The answer is the speech of exactly what was said: 24 kHz mono PCM16 of its length.
    assert sox_info(answer, "-r") == "24000" and sox_info(answer, "-c") == "1"
    assert sox_info(answer, "-b") == "16"
    samples = int(sox_info(answer, "-s"))
    assert samples == voice.duration_ms(said) * 24
    stat = subprocess.run([need("sox"), str(answer), "-n", "stat"], check=True,
                          capture_output=True, text=True).stderr
    rms = float(re.search(r"RMS\s+amplitude:\s+([\d.]+)", stat).group(1))  # type: ignore[union-attr]
    assert rms > 0.02  # speech-like audio, not silence


def test_graph_draws_the_cascade_and_the_phone_converters(
        capsys: pytest.CaptureFixture[str]) -> None:
    from flowspec.cli import main

    assert main(["graph", "specs/voice-responses.yaml"]) == 0
    browser = capsys.readouterr().out
    for edge in ('n_caller -->|"audio, text"| n_stt', 'n_stt -->|"text, transcript"| n_llm',
                 'n_llm -->|"text"| n_tts', 'n_tts -->|"audio, text"| n_caller'):
        assert edge in browser, browser
    assert "openai.transcribe" in browser and "openai.speech" in browser
    assert main(["graph", "specs/phone-responses.yaml"]) == 0
    phone = capsys.readouterr().out
    assert "pcmu 8 kHz mono → pcm16 24 kHz mono (inserted)" in phone
    assert 'n_tts -.->|"audio"| n_tts_to_phone_convert' in phone
