"""Node types from installed packages: found by entry point, and a broken plugin reported with
its package's name while everything else keeps working."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowspec.families.builtin import BUILTIN_FAMILIES
from flowspec.families.registry import (
    ENTRY_POINT_GROUP,
    FamilyRegistry,
    builtin_families,
    default_families,
)

from .plugins import broken_site, distribution

ROOT = Path(__file__).resolve().parents[2]


def _entry_points(site: Path) -> list[importlib.metadata.EntryPoint]:
    return [ep for dist in importlib.metadata.distributions(path=[str(site)])
            for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]


def _with_builtins() -> FamilyRegistry:
    registry = FamilyRegistry()
    registry.register(*BUILTIN_FAMILIES)
    return registry


def test_broken_plugins_are_reported_with_their_package_and_left_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = broken_site(tmp_path)
    monkeypatch.syspath_prepend(str(site))
    registry = _with_builtins()
    registry.load_plugins(_entry_points(site))
    problems = {p.package: p for p in registry.problems}
    assert set(problems) == {"flowspec-broken", "flowspec-impostor"}
    broken = problems["flowspec-broken"]
    assert str(broken) == ("node plugin flowspec-broken 0.1.0 (broken = flowspec_broken:FAMILIES) "
                           "is not loaded: importing it failed: RuntimeError: this plugin fails "
                           "on purpose")
    assert "declares type 'openai.realtime', which family 'openai.realtime' of flowspec" in \
        problems["flowspec-impostor"].message
    assert registry.types == builtin_families().types
    assert registry.origin("openai.realtime").package == "flowspec"


def test_an_entry_point_naming_something_else_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    distribution(tmp_path, "flowspec-odd", "flowspec_odd", "FAMILIES = {'not': 'families'}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = _with_builtins()
    registry.load_plugins(_entry_points(tmp_path))
    (problem,) = registry.problems
    assert problem.package == "flowspec-odd"
    assert "names 'dict', not a NodeFamily or a list of them" in problem.message


def test_the_example_plugin_is_installed_and_registered_as_the_builtins_are() -> None:
    families = default_families()
    assert "text.redact" in families and not families.problems
    origin = families.origin("text.redact")
    assert (origin.package, origin.version) == ("flowspec-redact", "0.1.0")
    assert families.types[:len(builtin_families().types)] == builtin_families().types
    assert "text.redact" not in builtin_families()


def _flowspec(*args: str, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "flowspec.cli", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, check=False)


def test_cli_commands_warn_of_broken_plugins_and_builtins_still_validate(tmp_path: Path) -> None:
    site = broken_site(tmp_path)
    result = _flowspec("validate", "specs/voice-assistant.yaml", site=site)
    assert result.returncode == 0, result.stderr
    assert "specs/voice-assistant.yaml: ok" in result.stdout
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2
    assert warnings[0].startswith("flowspec: warning: node plugin flowspec-broken 0.1.0 ")
    assert warnings[1].startswith("flowspec: warning: node plugin flowspec-impostor 0.1.0 ")
    schema = _flowspec("schema", site=site)
    assert schema.returncode == 0 and len(schema.stderr.splitlines()) == 2
    consts = {d["properties"]["type"]["const"]
              for d in json.loads(schema.stdout)["definitions"].values()
              if "const" in d.get("properties", {}).get("type", {})}
    assert "openai.realtime" in consts and "text.redact" in consts


def test_flowspec_nodes_lists_broken_plugins_with_their_error(tmp_path: Path) -> None:
    result = _flowspec("nodes", "--format", "json", site=broken_site(tmp_path))
    assert result.returncode == 0 and result.stderr == ""
    listing = json.loads(result.stdout)
    broken = {b["package"]: b for b in listing["broken"]}
    assert broken["flowspec-broken"]["error"] == ("importing it failed: RuntimeError: this "
                                                  "plugin fails on purpose")
    assert broken["flowspec-impostor"]["entry_point"] == "impostor = flowspec_impostor:FAMILIES"
    realtime = next(n for n in listing["nodes"] if n["type"] == "openai.realtime")
    assert realtime["package"] == "flowspec" and realtime["family"] == "openai.realtime"
    text = _flowspec("nodes", site=tmp_path).stdout
    assert "not loaded:\n  flowspec-broken 0.1.0 (broken = flowspec_broken:FAMILIES): " \
        "importing it failed" in text
