"""The generated schema, kept on disk between runs.

Generating the schema from the models is most of what a `flowspec validate` process spends
(pydantic builds every model's JSON Schema, about half a second), yet it changes only when the
models do. So the schema of the installed node families is written once to the user's cache
directory, under a fingerprint of everything it is made from: the flowspec, pydantic and
plugin distributions' versions and the size and modification time of each module that defines
the spec language or a family's models (an edited source, as in a development checkout,
makes a new fingerprint). A cache that cannot be read or written is simply not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from flowspec.families.registry import FamilyRegistry

log = logging.getLogger("flowspec.spec")

SOURCES = ("spec", "families")
"""The packages of flowspec whose modules shape the schema."""
KEEP = 8
"""Schemas kept in the cache directory (older fingerprints are removed)."""


def cache_dir() -> Path:
    """`FLOWSPEC_CACHE_DIR`, else `$XDG_CACHE_HOME/flowspec`, else `~/.cache/flowspec`."""
    given = os.environ.get("FLOWSPEC_CACHE_DIR")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "flowspec"


def fingerprint(families: FamilyRegistry) -> str:
    """A hash of what the schema of `families` is made from."""
    parts: list[str] = []
    for name in ("flowspec", "pydantic"):
        try:
            parts.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}=?")
    files = sorted(path for folder in _source_folders() for path in folder.rglob("*.py"))
    for entry in families:
        family = entry.family
        parts.append(f"family {family.name} {entry.origin} {','.join(family.types)}")
        for model in family.models:
            module_file = getattr(sys.modules.get(model.__module__), "__file__", None)
            if module_file:
                files.append(Path(module_file))
    for path in files:
        try:
            stat = path.stat()
        except OSError:
            parts.append(f"{path} ?")
            continue
        parts.append(f"{path} {stat.st_size} {stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def _source_folders() -> list[Path]:
    root = Path(__file__).resolve().parents[1]
    return [root / name for name in SOURCES]


def load_or_build(families: FamilyRegistry,
                  build: Callable[[FamilyRegistry], dict[str, Any]]) -> dict[str, Any]:
    """The schema of `families`: from the cache when its fingerprint is there, else built by
    `build` and written for the next run."""
    folder = cache_dir()
    path = folder / f"schema-{fingerprint(families)}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(cached, dict) and "definitions" in cached:
            return cached
    except (OSError, ValueError):
        pass
    schema = build(families)
    try:
        _write(folder, path, json.dumps(schema, ensure_ascii=False))
    except OSError as exc:
        log.debug("the schema cache %s cannot be written: %s", folder, exc)
    return schema


def _write(folder: Path, path: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    # Readers never see half a file: a temporary file in the same directory, renamed over.
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, prefix=".schema-",
                                     suffix=".tmp", delete=False) as out:
        out.write(text)
    os.replace(out.name, path)
    old = sorted(folder.glob("schema-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in old[KEEP:]:
        stale.unlink(missing_ok=True)
