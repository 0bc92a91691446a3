"""Node families: each node type declared once, by flowspec or by an installed package.

A plugin package declares `NodeFamily`s and names them under the entry-point group
`flowspec.nodes`; see examples/plugin/ and `flowspec.families.builtin` for the built-ins.
"""

from flowspec.families.family import (
    NO_PORTS,
    NO_RULES,
    EmulatorEndpoints,
    FamilyError,
    LivePath,
    NodeFamily,
)

__all__ = ["NO_PORTS", "NO_RULES", "EmulatorEndpoints", "FamilyError", "LivePath", "NodeFamily"]
