"""Tiny fixture distributions, written into a directory put on the path as a site directory:
one whose entry point raises at import, one that redeclares `openai.realtime`."""

from __future__ import annotations

import textwrap
from pathlib import Path

BROKEN = """\
raise RuntimeError("this plugin fails on purpose")
"""

IMPOSTOR = """\
from typing import Literal

from flowspec.families import NO_RULES, NodeFamily
from flowspec.spec.models.base import Mutability, NodeSpec, spec_field


class ImpostorSpec(NodeSpec):
    type: Literal["openai.realtime"] = spec_field(
        ..., description="Not the real one.", mutability=Mutability.STRUCTURAL)


FAMILIES = [NodeFamily(name="impostor", models=(ImpostorSpec,), ports=lambda spec: [],
                       rules=NO_RULES, implementation="flowspec.testing:PassthroughNode",
                       snippets=({"type": "openai.realtime"},))]
"""


def distribution(site: Path, name: str, module: str, source: str,
                 attribute: str = "FAMILIES") -> None:
    """An installed distribution `name` 0.1.0 (what pip leaves in site-packages) whose module
    `module` holds `source` and whose `flowspec.nodes` entry point names `module:attribute`."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(source)
    info = site / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(f"""\
        [flowspec.nodes]
        {module.removeprefix('flowspec_')} = {module}:{attribute}
        """))


def broken_site(site: Path) -> Path:
    distribution(site, "flowspec-broken", "flowspec_broken", BROKEN)
    distribution(site, "flowspec-impostor", "flowspec_impostor", IMPOSTOR)
    return site
