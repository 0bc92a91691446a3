"""Per-node rules: handlers checked without running their module, Twilio signatures, and where a
`tool.http` URL may lead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import flowspec
from flowspec.errors import Severity
from flowspec.spec.compile import compile_text
from flowspec.spec.rules import handler_problem

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = Path(flowspec.__file__).resolve().parents[1]  # the flowspec this test imports


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package on sys.path whose modules print and leave a marker file when imported."""
    root = tmp_path / "site"
    pkg = root / "noisy_tools"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    marker = tmp_path / "imported"
    (pkg / "loud.py").write_text(textwrap.dedent(f"""\
        import pathlib
        print("import-time output")
        pathlib.Path({str(marker)!r}).write_text("ran")

        def lookup(city):
            return city

        async def fetch():
            return 1

        class Tool:
            def __call__(self):
                return 2

        tool = Tool()
        from json import dumps as encode
        try:
            from ujson import loads
        except ImportError:
            def loads(text):
                return text
    """))
    (pkg / "lazy.py").write_text("def __getattr__(name):\n    return print\n")
    (pkg / "star.py").write_text("from os.path import *\n")
    (pkg / "broken.py").write_text("def lookup(:\n")
    monkeypatch.syspath_prepend(str(root))
    yield marker
    for name in [m for m in sys.modules if m.startswith("noisy_tools")]:
        del sys.modules[name]


@pytest.mark.parametrize("handler", [
    "noisy_tools.loud:lookup", "noisy_tools.loud:fetch", "noisy_tools.loud:Tool",
    "noisy_tools.loud:tool", "noisy_tools.loud:encode", "noisy_tools.loud:loads",
    "noisy_tools.lazy:anything", "noisy_tools.star:join",
])
def test_a_handler_is_found_without_importing_its_module(package: Path, handler: str) -> None:
    assert handler_problem(handler) is None
    assert not package.exists()
    assert handler.partition(":")[0] not in sys.modules


@pytest.mark.parametrize(("handler", "problem"), [
    ("noisy_tools.loud:lokup", "module 'noisy_tools.loud' has no 'lokup'"),
    ("noisy_tools.nothere:f", "cannot import module 'noisy_tools.nothere': No module named "
     "'noisy_tools.nothere'"),
    ("no_such_package.mod:f", "cannot import module 'no_such_package.mod': No module named "
     "'no_such_package'"),
    ("noisy_tools.broken:lookup", "importing 'noisy_tools.broken' failed: SyntaxError: "),
])
def test_a_handler_that_is_not_there_is_reported(package: Path, handler: str,
                                                 problem: str) -> None:
    found = handler_problem(handler)
    assert found is not None and found.startswith(problem), found
    assert not package.exists()


def test_an_imported_module_is_looked_into_as_it_is(package: Path) -> None:
    assert handler_problem("flowspec.examples.weather:get_weather") is None
    assert handler_problem("json:dumps.__call__") is None
    assert handler_problem("json:__doc__") == "'json:__doc__' is not callable"
    assert handler_problem("json:nope") == "module 'json' has no 'nope'"


def test_the_tool_node_still_imports(package: Path) -> None:
    assert handler_problem("noisy_tools.loud:lookup", imports=True) is None
    assert package.read_text() == "ran"


def test_validate_runs_no_handler_code_and_keeps_its_json_clean(package: Path,
                                                                tmp_path: Path) -> None:
    spec = tmp_path / "bot.yaml"
    spec.write_text(textwrap.dedent("""\
        flowspec: 1
        name: t
        nodes:
          chat: {type: transport.text}
          llm: {type: openai.responses, tools: [good, typo]}
          good: {type: tool.python, handler: "noisy_tools.loud:lookup", description: d}
          typo: {type: tool.python, handler: "noisy_tools.loud:lokup", description: d}
        edges: [chat -> llm -> chat]
        """))
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(PACKAGE_ROOT)])}
    result = subprocess.run([sys.executable, "-m", "flowspec.cli", "validate", "--format", "json",
                             str(spec)], capture_output=True, text=True, env=env, cwd=tmp_path,
                            check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    found = [(d["code"], d["pointer"]) for d in payload["files"][0]["diagnostics"]]
    assert found == [("tool.handler-unresolved", "/nodes/typo/handler")]
    assert not package.exists()


PHONE = """\
flowspec: 1
name: t
nodes:
  phone:
    type: transport.twilio
{token}
  agent: {{type: openai.realtime}}
edges: [phone -> agent -> phone]
"""


@pytest.mark.parametrize(("token", "env", "pointer"), [
    ("", {}, "/nodes/phone"),
    ("    auth_token: ${TWILIO_AUTH_TOKEN:-}", {}, "/nodes/phone/auth_token"),
    ("    auth_token: ''", {}, "/nodes/phone/auth_token"),
])
def test_a_twilio_transport_without_a_token_warns(token: str, env: dict[str, str],
                                                  pointer: str) -> None:
    report = compile_text(PHONE.format(token=token), "phone.yaml", env=env)
    (warning,) = [d for d in report.diagnostics if d.code == "twilio.unsigned"]
    assert (warning.severity, warning.pointer) == (Severity.WARNING, pointer)
    assert "media-stream upgrade" in warning.message and report.ok


def test_a_twilio_transport_with_a_token_does_not_warn() -> None:
    report = compile_text(PHONE.format(token="    auth_token: ${TWILIO_AUTH_TOKEN:-}"),
                          "phone.yaml", env={"TWILIO_AUTH_TOKEN": "t0ken"})
    assert report.ok and not report.warnings


@pytest.mark.parametrize(("path", "ok"), [("audio/sorry.wav", True), ("/etc/sorry.wav", False),
                                          ("../sorry.wav", False)])
def test_the_unavailable_line_is_a_file_under_the_working_directory(path: str, ok: bool) -> None:
    token = f"    auth_token: t0ken\n    unavailable_audio: {path}"
    report = compile_text(PHONE.format(token=token), "phone.yaml", env={})
    assert report.ok is ok, report.diagnostics
    if not ok:
        (error,) = report.errors
        assert (error.code, error.pointer) == ("spec.path-outside",
                                               "/nodes/phone/unavailable_audio")


def test_the_phone_example_is_clean_under_strict_once_its_token_is_set() -> None:
    example = str(ROOT / "specs" / "phone-agent.yaml")
    env = {**os.environ, "TWILIO_AUTH_TOKEN": "t0ken"}
    strict = subprocess.run([sys.executable, "-m", "flowspec.cli", "validate", "--strict",
                             example], capture_output=True, text=True, env=env, check=False)
    assert strict.returncode == 0, strict.stdout
    env.pop("TWILIO_AUTH_TOKEN")
    unset = subprocess.run([sys.executable, "-m", "flowspec.cli", "validate", "--strict", example],
                           capture_output=True, text=True, env=env, check=False)
    assert unset.returncode == 1 and "[twilio.unsigned]" in unset.stdout


TOOL = """\
flowspec: 1
name: t
nodes:
  chat: {{type: transport.text}}
  llm: {{type: openai.responses, tools: [fetch]}}
  fetch:
    type: tool.http
    url: "{url}"
    description: d
{extra}
edges: [chat -> llm -> chat]
"""


def url_findings(url: str, extra: str = "", env: dict[str, str] | None = None,
                 ) -> list[tuple[str, str]]:
    report = compile_text(TOOL.format(url=url, extra=extra), "tool.yaml", env=env or {})
    return [(d.code, d.message) for d in report.errors]


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8080/x", "http://localhost/x",
    "http://api.localhost./x", "http://10.1.2.3/", "http://192.168.0.1/", "http://172.16.0.1/",
    "http://100.64.0.1/", "http://0.0.0.0/", "http://[::1]/", "http://[fd00::1]/",
    "http://[fe80::1]/", "http://[::ffff:169.254.169.254]/", "http://224.0.0.1/",
    "http://127.1/", "http://2130706433/", "http://0x7f.1/", "https://240.0.0.1/",
])
def test_a_url_to_a_private_address_is_an_error(url: str) -> None:
    ((code, message),) = url_findings(url)
    assert code == "tool.private-network"
    assert "allows more" in message
    assert url_findings(url, "    allow_private_network: true") == []


def test_the_metadata_address_is_named_in_the_message() -> None:
    ((_, message),) = url_findings("http://169.254.169.254/latest/meta-data/")
    assert message.startswith("`url` points at '169.254.169.254', which is a link-local address")


@pytest.mark.parametrize("url", ["https://api.example.com/x", "http://8.8.8.8/",
                                 "http://[2606:4700::1111]/", "https://localhost.example.com/"])
def test_public_urls_pass(url: str) -> None:
    assert url_findings(url) == []


@pytest.mark.parametrize("url", ["https://user:pw@api.example.com/", "https://token@example.com/"])
def test_credentials_in_a_url_are_always_an_error(url: str) -> None:
    for extra in ("", "    allow_private_network: true"):
        report = compile_text(TOOL.format(url=url, extra=extra), "tool.yaml", env={})
        (error,) = report.errors
        assert error.code == "tool.url-credentials" and error.pointer == "/nodes/fetch/url"
        assert "headers" in (error.hint or "") and "pw" not in str(error)


def test_a_host_from_the_environment_is_not_repeated() -> None:
    ((code, message),) = url_findings("${TOOL_URL}", env={"TOOL_URL": "http://10.9.8.7/x"})
    assert code == "tool.private-network" and "10.9.8.7" not in message
