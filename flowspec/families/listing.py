"""`flowspec nodes`: every node type, its family, the package it came from, its ports and whether
it has a live-reload path, then the plugins that could not be loaded and why.

Ports can depend on a node's settings (a Realtime node's audio formats); the ones listed are
those of the type's editor snippet, the node as `flowspec init` or completion would start it.
"""

from __future__ import annotations

from typing import Any

from flowspec.families.registry import FamilyRegistry


def node_listing(families: FamilyRegistry) -> dict[str, Any]:
    """The listing as JSON data: `{"nodes": [...], "broken": [...]}`."""
    nodes: list[dict[str, Any]] = []
    for entry in families:
        family = entry.family
        for node_type in family.types:
            model = family.model(node_type)
            nodes.append({
                "type": node_type,
                "family": family.name,
                "package": entry.origin.package,
                "version": entry.origin.version,
                "kind": model.kind,
                "description": _first_line(model.__doc__),
                "ports": _ports(families, node_type),
                "live": family.live is not None,
                "emulated": family.emulator is not None,
            })
    return {"nodes": nodes, "broken": [problem.to_json() for problem in families.problems]}


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0]


def _ports(families: FamilyRegistry, node_type: str) -> list[dict[str, Any]] | str:
    from pydantic import ValidationError

    try:
        spec = families.model(node_type).model_validate(families.snippet(node_type))
        ports = families.ports_of(spec).values()
    except (ValidationError, ValueError, TypeError) as exc:
        return f"unknown: its snippet does not make a node ({type(exc).__name__})"
    return [{"name": port.name, "direction": port.direction, "kinds": sorted(port.kinds),
             "audio": str(port.audio) if port.audio is not None else None,
             "required": port.required} for port in ports]


def render_listing(listing: dict[str, Any]) -> str:
    """The listing as a text table, for people."""
    rows = [("TYPE", "FAMILY", "PACKAGE", "LIVE", "PORTS")]
    for node in listing["nodes"]:
        rows.append((node["type"], node["family"], f"{node['package']} {node['version']}",
                     "yes" if node["live"] else "no", _ports_text(node["ports"])))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
             + "  " + row[4] for row in rows]
    if listing["broken"]:
        lines.append("")
        lines.append("not loaded:")
        for broken in listing["broken"]:
            lines.append(f"  {broken['package']} {broken['version']} ({broken['entry_point']}): "
                         f"{broken['error']}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _ports_text(ports: list[dict[str, Any]] | str) -> str:
    if isinstance(ports, str):
        return ports
    if not ports:
        return "none"
    return "; ".join(f"{'→' if p['direction'] == 'out' else '←'}{p['name']} "
                     f"{','.join(p['kinds'])}" + (f" ({p['audio']})" if p["audio"] else "")
                     for p in ports)
