"""`flowspec emulate` as a process: prints its URLs, serves, and stops cleanly on SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from openai import AsyncOpenAI

from flowspec.emulator import cli


def test_configure_defaults() -> None:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.script, args.pace, args.retired_beta) == (
        "127.0.0.1", 0, None, 1.0, False)


def test_bad_script_exits_2_with_a_located_message(tmp_path: Path, capsys: object) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("rules:\n  - sya: hi\n")
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    assert cli.run(parser.parse_args(["--script", str(path)])) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert f"{path}:2:5 /rules/0/sya" in err


async def test_serves_until_sigint(tmp_path: Path) -> None:
    script = tmp_path / "rules.yaml"
    script.write_text("rules: [{when: {contains: ping}, say: pong}]\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flowspec.emulator.cli", "--pace", "0", "--script", str(script),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            lines = [(await process.stdout.readline()).decode() for _ in range(3)]
        base_url = lines[1].split()[-1]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        assert lines[2].split()[-1] == base_url.replace("http://", "ws://")
        async with AsyncOpenAI(api_key="k", base_url=base_url, max_retries=0) as client:
            reply = await client.responses.create(model="gpt-4.1", input="ping")
        assert reply.output_text == "pong"
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
