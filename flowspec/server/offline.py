"""The offline default: with no OpenAI key and no explicit endpoint, talk to the built-in emulator.

`offline_graphs` decides per node whose family talks to OpenAI (it declares `EmulatorEndpoints`).
A node goes to the emulator when the environment has no `OPENAI_API_KEY`, the node has no
`api_key` of its own, and it leaves its endpoint URLs at their OpenAI defaults. Those nodes are
rebuilt (never mutated) with the emulator's URLs and a placeholder key, and the caller prints
`banner()` so nobody mistakes the emulator's voice for OpenAI's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pydantic import SecretStr

from flowspec.families.family import EmulatorEndpoints
from flowspec.families.registry import default_families
from flowspec.spec.compiled import CompiledGraph
from flowspec.spec.models.base import NodeSpec

PLACEHOLDER_KEY = "emulator"


@dataclass(frozen=True, slots=True)
class Offline:
    """What the offline default did: the graphs to serve and the emulated nodes, by spec."""

    graphs: tuple[CompiledGraph, ...]
    emulated: tuple[tuple[str, str], ...]  # (spec name, node id)
    emulator_url: str | None


def _endpoints(spec: NodeSpec) -> EmulatorEndpoints | None:
    families = default_families()
    return families.family(spec.type).emulator if spec.type in families else None


def wants_emulator(spec: NodeSpec, env: Mapping[str, str]) -> bool:
    endpoints = _endpoints(spec)
    if endpoints is None or env.get("OPENAI_API_KEY"):
        return False
    if getattr(spec, endpoints.key_field, None) is not None:
        return False
    fields = type(spec).model_fields
    return all(getattr(spec, name) == fields[name].default for name in endpoints.urls)


def emulated_nodes(graph: CompiledGraph, env: Mapping[str, str]) -> list[str]:
    return [node_id for node_id, spec in graph.nodes.items() if wants_emulator(spec, env)]


def point_at(graph: CompiledGraph, node_ids: Sequence[str], http_base: str,
             ws_base: str) -> CompiledGraph:
    """`graph` with `node_ids` rebuilt to use the emulator at `http_base`/`ws_base`."""
    nodes = dict(graph.nodes)
    for node_id in node_ids:
        spec = nodes[node_id]
        endpoints = _endpoints(spec)
        if endpoints is None:
            continue
        update: dict[str, object] = {endpoints.key_field: SecretStr(PLACEHOLDER_KEY)}
        update |= {name: url.format(http=http_base, ws=ws_base)
                   for name, url in endpoints.urls.items()}
        nodes[node_id] = spec.model_copy(update=update)
    return dataclasses.replace(graph, nodes=nodes, _out={}, _in={})


@asynccontextmanager
async def offline_graphs(graphs: Sequence[CompiledGraph], env: Mapping[str, str], *,
                         pace: float = 1.0, url: str | None = None) -> AsyncIterator[Offline]:
    """Start the emulator when any model node wants it (see the module docstring) and yield the
    graphs pointed at it; stop it when the block exits. Without such nodes, nothing starts.
    With `url`, the emulator already runs there (one shared by the workers of a server)."""
    wanted = [(graph, emulated_nodes(graph, env)) for graph in graphs]
    if not any(ids for _graph, ids in wanted):
        yield Offline(tuple(graphs), (), None)
        return
    emulated = tuple((graph.name, node_id) for graph, ids in wanted for node_id in ids)
    if url:
        base = url.rstrip("/")
        ws = base.replace("http://", "ws://", 1)
        yield Offline(tuple(point_at(graph, ids, f"{base}/v1", f"{ws}/v1") if ids else graph
                            for graph, ids in wanted), emulated, base)
        return
    from flowspec.emulator import Emulator

    # A served emulator keeps no message records: they would grow with every session.
    async with Emulator.start(pace=pace, keep_records=False) as emulator:
        pointed = tuple(point_at(graph, ids, emulator.http_base_url, emulator.ws_base_url)
                        if ids else graph for graph, ids in wanted)
        yield Offline(pointed, emulated, emulator.base_url)


def banner(offline: Offline) -> str | None:
    """The notice printed when nodes run against the emulator (None when none do)."""
    if offline.emulator_url is None:
        return None
    nodes = ", ".join(f"{spec}/{node}" for spec, node in offline.emulated)
    return (f"No OPENAI_API_KEY and no base_url: using the built-in OpenAI emulator at "
            f"{offline.emulator_url} for {nodes}.\n"
            "  Replies are synthesized locally (not OpenAI). Set OPENAI_API_KEY to use OpenAI.")


def repoint(offline: Offline, graph: CompiledGraph, env: Mapping[str, str]) -> CompiledGraph:
    """A reloaded `graph` rewritten like the served ones: the same nodes go to the same
    emulator (a spec that gained a model node sends it there too)."""
    if offline.emulator_url is None:
        return graph
    ids = emulated_nodes(graph, env)
    if not ids:
        return graph
    base = offline.emulator_url
    return point_at(graph, ids, f"{base}/v1", base.replace("http://", "ws://", 1) + "/v1")
