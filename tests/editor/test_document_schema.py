"""The per-document schema (`flowspec schema --for`) through the real yaml-language-server."""

from __future__ import annotations

from pathlib import Path

from flowspec.cli import main

from .conftest import ROOT
from .lsp import LanguageServer, cursor

SPEC = """\
flowspec: 1
name: t
nodes:
  caller:
    type: transport.twilio
  llm:
    type: openai.realtime
    tools: [{tools}]
  rec:
    type: audio.record
  get_weather:
    type: tool.python
    handler: weather:get
    description: Current weather for a city.
  hang_up:
    type: tool.http
    url: https://example.com/hang-up
    description: Ends the call.
edges:
{edges}
"""


def specialised(tmp: Path, name: str, edges: str, tools: str = "") -> tuple[Path, str]:
    """Write the spec and its schema as a user would (`flowspec schema --for`), with the modeline
    pointing at the schema; returns the spec path and its text (cursor marker kept)."""
    spec = tmp / f"{name}.yaml"
    text = SPEC.format(edges=edges, tools=tools)
    spec.write_text(cursor(text)[0] if "<|>" in text else text)
    schema = tmp / ".flowspec" / f"{name}.schema.json"
    assert main(["schema", "--for", str(spec), "-o", str(schema)]) == 0
    return spec, f"# yaml-language-server: $schema=./.flowspec/{name}.schema.json\n" + text


def labels(server: LanguageServer, path: Path, text: str) -> dict[str, str]:
    body, line, character = cursor(text)
    items = server.completion(server.open(path, body), line, character)
    return {str(i["label"]): str((i.get("documentation") or {"value": ""})["value"]
                                 if isinstance(i.get("documentation"), dict)
                                 else i.get("documentation", "")) for i in items}


def test_edge_source_completes_to_the_specs_output_ports(server: LanguageServer,
                                                         workspace: Path) -> None:
    path, text = specialised(workspace, "from", "  - {from: <|>, to: llm}")
    items = labels(server, path, text)
    assert {"caller", "caller.out", "llm", "llm.out"} <= set(items)
    assert "rec" not in items and "get_weather" not in items  # no outputs / tools have no ports
    assert "audio" in items["caller.out"] and "pcmu 8 kHz" in items["caller.out"]


def test_edge_target_completes_to_the_specs_input_ports(server: LanguageServer,
                                                        workspace: Path) -> None:
    path, text = specialised(workspace, "to", "  - from: llm\n    to: <|>")
    items = labels(server, path, text)
    assert {"llm", "llm.in", "caller", "caller.in", "rec.user", "rec.bot"} <= set(items)
    assert "rec" not in items  # audio.record has no `in` port, only `user` and `bot`


def test_chain_edges_complete_to_chains_of_the_specs_nodes(server: LanguageServer,
                                                           workspace: Path) -> None:
    path, text = specialised(workspace, "chain", "  - <|>")
    items = labels(server, path, text)
    assert "caller -> llm -> caller" in items
    assert "llm -> rec" not in items and "llm.out -> rec.bot" in items


def test_tools_complete_to_the_specs_tool_nodes(server: LanguageServer, workspace: Path) -> None:
    path, text = specialised(workspace, "tools", "  - caller -> llm -> caller", tools="<|>")
    items = labels(server, path, text)
    assert {"get_weather", "hang_up"} <= set(items)
    assert items["hang_up"] == "Ends the call."
    assert "caller" not in items and "llm" not in items


def test_stale_references_are_flagged_on_their_line(server: LanguageServer,
                                                    workspace: Path) -> None:
    path, text = specialised(workspace, "stale",
                             "  - caller -> llm -> caller\n  - {from: llm, to: recorder.bot}\n"
                             "  - caller -> bot",
                             tools="get_weather, lookup")
    found = server.diagnostics(server.open(path, text))
    by_line = {d["range"]["start"]["line"]: d["message"] for d in found}
    # Zero-based lines, the modeline being 0: `tools:` is on 8, the two stale edges on 21, 22.
    assert set(by_line) == {8, 21, 22}
    assert "get_weather" in by_line[8] and "hang_up" in by_line[8]
    assert "rec.bot" in by_line[21]
    assert by_line[22].startswith("An edge joins this spec's nodes and ports: caller, caller.in")


def test_a_real_example_validates_against_its_own_schema(server: LanguageServer,
                                                         workspace: Path) -> None:
    source = ROOT / "specs" / "phone-agent.yaml"
    spec = workspace / "phone-agent.yaml"
    spec.write_text(source.read_text())
    schema = workspace / ".flowspec" / "phone-agent.schema.json"
    assert main(["schema", "--for", str(spec), "-o", str(schema)]) == 0
    text = "# yaml-language-server: $schema=./.flowspec/phone-agent.schema.json\n" + \
        source.read_text().split("\n", 1)[1]
    assert server.diagnostics(server.open(spec, text)) == []
