"""Hostile spec documents: each a small or generated text that, unbounded, would take minutes,
gigabytes or a traceback to read (alias bombs, deep nesting, huge numbers, control characters,
too many nodes, edges or tools, oversize documents).

A plain module (no pytest) so every way a spec arrives can be tried with the same inputs:
`flowspec validate`, `compile_text`, the admin API, the file watcher. `hostile_specs()` gives
`(name, text)` pairs; the name ends in the file extension to read it with (`.yaml`, `.json`),
and `EXPECTED[name]` is the code of the error `flowspec validate` reports for it.
"""

from __future__ import annotations

import json

from flowspec.limits import (
    MAX_ALIAS_EXPANSION,
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    MAX_EDGES,
    MAX_NODES,
    MAX_NUMBER_DIGITS,
    MAX_TOOLS_PER_MODEL,
)

HostileSpec = tuple[str, str]

HEAD = "flowspec: 1\nname: hostile\n"
GRAPH = """\
nodes:
  chat: {type: transport.text}
  llm: {type: openai.responses}
edges: [chat -> llm -> chat]
"""


def _laughs(names: str = "abcdefghi", width: int = 9) -> str:
    text = "a: &a [" + ",".join(["lol"] * width) + "]\n"
    for name, inner in zip(names[1:], names, strict=False):
        text += f"{name}: &{name} [" + ",".join([f"*{inner}"] * width) + "]\n"
    return text


def _alias_bombs() -> list[HostileSpec]:
    mappings = "a: &a {x: 1, y: 2, z: 3, w: 4}\n" + "".join(
        f"b{i}: &b{i} {{" + ", ".join(f"k{j}: *{'a' if i == 0 else f'b{i - 1}'}"
                                      for j in range(8)) + "}\n" for i in range(8))
    merges = "base: &base {type: transport.text, x: [1, 2, 3, 4]}\nnodes:\n" + "".join(
        f"  n{i}: {{<<: *base}}\n" for i in range(MAX_ALIAS_EXPANSION // 5))
    in_a_node = (HEAD + "nodes:\n  chat: {type: transport.text}\n  llm:\n"
                 "    type: openai.responses\n    extra:\n" + "".join(
                     f"      {line}\n" for line in _laughs().splitlines())
                 + "edges: [chat -> llm -> chat]\n")
    return [
        ("alias-bomb-lists.yaml", HEAD + _laughs() + GRAPH),
        ("alias-bomb-mappings.yaml", HEAD + mappings + GRAPH),
        ("alias-bomb-merge-keys.yaml", HEAD + merges),
        ("alias-bomb-in-a-node.yaml", in_a_node),
        ("alias-many-small.yaml", HEAD + "x: &x 1\ny: ["
         + ",".join(["*x"] * (MAX_ALIAS_EXPANSION + 1)) + "]\n" + GRAPH),
        ("alias-wide-anchor.yaml", HEAD + "x: &x [" + ",".join(["1"] * 4000)
         + "]\ny: [*x, *x, *x]\n" + GRAPH),
        ("alias-recursive.yaml", HEAD + "x: &x {y: [*x]}\n" + GRAPH),
    ]


def _deep() -> list[HostileSpec]:
    over = MAX_DEPTH + 1
    block_mapping = "".join(" " * level + f"k{level}:\n" for level in range(over)) + \
        " " * over + "leaf: 1\n"
    return [
        ("deep-flow-101.yaml", HEAD + "x: " + "[" * over + "]" * over + "\n" + GRAPH),
        ("deep-flow-100000.yaml", HEAD + "x: " + "[" * 100_000 + "]" * 100_000 + "\n" + GRAPH),
        ("deep-flow-unclosed.yaml", HEAD + "x: " + "{a: " * 100_000 + "\n"),
        ("deep-block-101.yaml", HEAD + block_mapping),
        ("deep-block-100000.yaml", HEAD + "x:\n" + "- " * 100_000 + "leaf\n"),
        ("deep-in-a-key.yaml", HEAD + "? " + "[" * 100_000 + "\n: 1\n"),
        ("deep-json-101.json", '{"flowspec": 1, "x": ' + "[" * over + "]" * over + "}"),
        ("deep-json-100000.json", '{"flowspec": 1, "x": ' + '{"a": ' * 100_000 + "1"
         + "}" * 100_000 + "}"),
    ]


def _numbers() -> list[HostileSpec]:
    long = "9" * 5000
    return [
        ("huge-int.yaml", HEAD + f"x: {long}\n" + GRAPH),
        ("huge-int-key.yaml", HEAD + f"x: {{{long}: 1}}\n" + GRAPH),
        ("huge-negative-int.yaml", HEAD + f"x: -{'1' * MAX_NUMBER_DIGITS}\n" + GRAPH),
        ("huge-float.yaml", HEAD + f"x: 1.{long}e10\n" + GRAPH),
        ("huge-hex.yaml", HEAD + f"x: 0x{'f' * 5000}\n" + GRAPH),
        ("huge-tagged-int.yaml", HEAD + f"x: !!int '{long}'\n" + GRAPH),
        ("huge-sexagesimal.yaml", "%YAML 1.1\n---\n" + HEAD + "x: 1" + ":59" * 3000 + "\n"),
        ("huge-int.json", json.dumps({"flowspec": 1, "name": "hostile"})[:-1]
         + f', "x": {long}}}'),
        ("bad-timestamp.yaml", HEAD + "x: 2020-13-45\n" + GRAPH),
    ]


def _characters() -> list[HostileSpec]:
    return [
        ("nul-byte.yaml", HEAD + "description: a\x00b\n" + GRAPH),
        ("control-characters.yaml", HEAD + "description: 'bell \x07 escape \x1b'\n" + GRAPH),
        ("nul-bytes-only.yaml", "\x00" * 1000),
    ]


def _counts() -> list[HostileSpec]:
    nodes = HEAD + "nodes:\n" + "".join(f"  n{i}: {{type: transport.text}}\n"
                                         for i in range(10_000)) + "edges: []\n"
    edges = HEAD + GRAPH.split("edges:")[0] + "edges:\n" + "".join(
        "  - chat -> llm\n" for _ in range(MAX_EDGES + 1000))
    chain = HEAD + GRAPH.split("edges:")[0] + "edges:\n  - " + " -> ".join(
        ["chat"] + ["llm"] * (MAX_EDGES + 1000)) + "\n"
    tools = HEAD + "nodes:\n  chat: {type: transport.text}\n  llm:\n    type: openai.responses\n" \
        "    tools: [" + ", ".join(f"t{i}" for i in range(500)) + "]\n" + "".join(
            f"  t{i}: {{type: tool.python, handler: 'json:dumps', description: d}}\n"
            for i in range(500)) + "edges: [chat -> llm -> chat]\n"
    nodes_json = json.dumps({"flowspec": 1, "name": "hostile",
                             "nodes": {f"n{i}": {"type": "transport.text"}
                                       for i in range(MAX_NODES * 5)}})
    assert MAX_TOOLS_PER_MODEL < 500 and MAX_NODES < 10_000
    return [
        ("nodes-10000.yaml", nodes),
        ("nodes-10000.json", nodes_json),
        ("edges-5000.yaml", edges),
        ("chain-5000.yaml", chain),
        ("tools-500.yaml", tools),
    ]


def _size() -> list[HostileSpec]:
    padding = "# " + "x" * 78 + "\n"
    return [
        ("document-2mib.yaml", HEAD + GRAPH + padding * (2 * MAX_DOCUMENT_BYTES // len(padding))),
        ("document-2mib-one-line.yaml", HEAD + "description: " + "x" * 2 * MAX_DOCUMENT_BYTES
         + "\n" + GRAPH),
    ]


def hostile_specs() -> list[HostileSpec]:
    """Every hostile case as `(name, text)`, built fresh (some are megabytes)."""
    return _alias_bombs() + _deep() + _numbers() + _characters() + _counts() + _size()


EXPECTED: dict[str, str] = {
    **{name: "limit.aliases" for name in (
        "alias-bomb-lists.yaml", "alias-bomb-mappings.yaml", "alias-bomb-merge-keys.yaml",
        "alias-bomb-in-a-node.yaml", "alias-many-small.yaml", "alias-wide-anchor.yaml",
        "alias-recursive.yaml")},
    **{name: "limit.depth" for name in (
        "deep-flow-101.yaml", "deep-flow-100000.yaml", "deep-flow-unclosed.yaml",
        "deep-block-101.yaml", "deep-block-100000.yaml", "deep-in-a-key.yaml",
        "deep-json-101.json", "deep-json-100000.json")},
    **{name: "limit.digits" for name in (
        "huge-int.yaml", "huge-int-key.yaml", "huge-negative-int.yaml", "huge-float.yaml",
        "huge-hex.yaml", "huge-tagged-int.yaml", "huge-sexagesimal.yaml", "huge-int.json")},
    "bad-timestamp.yaml": "yaml.bad-value",
    "nul-byte.yaml": "yaml.syntax",
    "control-characters.yaml": "yaml.syntax",
    "nul-bytes-only.yaml": "yaml.syntax",
    "nodes-10000.yaml": "limit.nodes",
    "nodes-10000.json": "limit.nodes",
    "edges-5000.yaml": "limit.edges",
    "chain-5000.yaml": "limit.edges",
    "tools-500.yaml": "limit.tools",
    "document-2mib.yaml": "limit.size",
    "document-2mib-one-line.yaml": "limit.size",
}
"""The code of the error each case is refused with."""
