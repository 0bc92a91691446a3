"""The schema kept on disk between runs: built once per fingerprint, read back equal, rebuilt
when its sources change or the file is damaged, and never in the way when it cannot be kept."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from flowspec.families.registry import FamilyRegistry, default_families
from flowspec.spec import schema_cache
from flowspec.spec.schema import _build


class Counting:
    def __init__(self) -> None:
        self.builds = 0

    def __call__(self, families: FamilyRegistry) -> dict[str, Any]:
        self.builds += 1
        return _build(families)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("FLOWSPEC_CACHE_DIR", str(folder))
    return folder


def test_the_schema_is_built_once_and_read_back_equal(cache: Path) -> None:
    build = Counting()
    first = schema_cache.load_or_build(default_families(), build)
    second = schema_cache.load_or_build(default_families(), build)
    assert build.builds == 1 and second == first
    assert len(list(cache.glob("schema-*.json"))) == 1
    assert first == _build(default_families())


def test_a_damaged_file_is_rebuilt(cache: Path) -> None:
    build = Counting()
    schema_cache.load_or_build(default_families(), build)
    (saved,) = cache.glob("schema-*.json")
    saved.write_text('{"definitions": ')
    again = schema_cache.load_or_build(default_families(), build)
    assert build.builds == 2 and "definitions" in again


def test_a_changed_source_makes_a_new_fingerprint(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "spec"
    source.mkdir()
    model = source / "models.py"
    model.write_text("A = 1\n")
    monkeypatch.setattr(schema_cache, "_source_folders", lambda: [source])
    before = schema_cache.fingerprint(default_families())
    assert schema_cache.fingerprint(default_families()) == before
    model.write_text("A = 22\n")
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 1_000_000))
    assert schema_cache.fingerprint(default_families()) != before


def test_a_cache_that_cannot_be_written_is_not_used(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("FLOWSPEC_CACHE_DIR", str(blocked / "cache"))
    build = Counting()
    schema = schema_cache.load_or_build(default_families(), build)
    assert build.builds == 1 and "definitions" in schema
