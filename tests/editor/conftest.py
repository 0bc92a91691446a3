"""One real yaml-language-server per test session, configured as an editor would configure it."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .lsp import LanguageServer

ROOT = Path(__file__).resolve().parents[2]
EDITOR_TOOLS = ROOT / "tools" / "editor"
SERVER = EDITOR_TOOLS / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
SCHEMA = ROOT / "schemas" / "flowspec.schema.json"
MAPPED_GLOB = "**/*.flowspec.yaml"
"""Files the `yaml.schemas` setting maps to the schema (as in the README), without a modeline."""


def _command() -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed: the editor tests drive yaml-language-server, an npm "
                    "package (install Node.js 20+, then `npm ci --prefix tools/editor`)")
    if not SERVER.exists():
        pytest.fail(f"yaml-language-server is not installed ({SERVER} is missing): run "
                    "`npm ci --prefix tools/editor` (.ci/run does)")
    return [node, str(SERVER), "--stdio"]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LanguageServer]:
    workspace = tmp_path_factory.mktemp("workspace")
    settings = {
        "yaml": {
            "validate": True,
            "hover": True,
            "completion": True,
            "format": {"enable": False},
            # No network in tests, and no catalog schema may compete with ours.
            "schemaStore": {"enable": False},
            "schemas": {SCHEMA.as_uri(): MAPPED_GLOB},
        },
    }
    lsp = LanguageServer(_command(), workspace, settings)
    try:
        yield lsp
    finally:
        lsp.close()


@pytest.fixture(scope="session")
def workspace(server: LanguageServer) -> Path:
    return server.root


_names = itertools.count()


@pytest.fixture
def doc_path(workspace: Path) -> Path:
    """A fresh document path: the server keeps state per URI, so tests never share one."""
    return workspace / f"doc{next(_names)}.yaml"


def modeline(schema: Path = SCHEMA) -> str:
    return f"# yaml-language-server: $schema={schema}\n"
