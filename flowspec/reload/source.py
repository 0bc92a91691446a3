"""Where a served spec's truth lives, and how every worker names its versions alike.

A `Revision` is one version of the document: its text, an ETag from the text's hash (the same
document has the same ETag on every worker and replica) and a number that grows by one per
change. `FileSource` keeps the truth in the spec file: an admin change is written back to it
(comments kept, atomically: `flowspec.reload.atomic`), and edits of the file (a save, a
Kubernetes ConfigMap swap) are seen by content. Workers serving the same file share a small
version log beside the admin token (one hash per line, under an exclusive lock), so whichever
worker sees a document first gives it its number and the others read it: `/healthz` agrees on
every worker. `flowspec.reload.redis_source` keeps the truth in Redis instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flowspec import limits
from flowspec.reload.atomic import replace_file

log = logging.getLogger("flowspec.reload")


def text_etag(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Revision:
    version: int
    text: str
    etag: str
    data: Any = None
    """The document as JSON data, when the source holds it too (no YAML to read then)."""


class SourceError(Exception):
    """A change the source cannot take: `code` and the HTTP `status` the admin API answers."""

    def __init__(self, code: str, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.details = details


class SpecSource(Protocol):
    """The truth of one served spec."""

    kind: str

    async def current(self) -> Revision:
        """The latest revision (raises SourceError when it cannot be read)."""
        ...

    async def propose(self, text: str, base: Revision, data: Any = None) -> Revision:
        """Make `text` (whose data is `data`, when known) the next revision after `base`;
        raises SourceError (`conflict` when the truth moved on since `base`,
        `read_only_source`, `store_unavailable`)."""
        ...

    def changes(self, stop: asyncio.Event) -> AsyncIterator[Revision]:
        """Revisions made elsewhere (an editor, another worker or replica), in order, until
        `stop` is set."""
        ...

    def refusal(self) -> SourceError | None:
        """Why the source would take no change now (read-only, unreachable), before anything
        is applied; None when it may."""
        ...

    def served(self, revision: Revision) -> None:
        """This process now serves `revision` (a store that lost its data is seeded with it)."""
        ...

    def health(self) -> dict[str, Any]:
        """What `/healthz` says of the source."""
        ...

    async def close(self) -> None: ...


class FileSource:
    """The spec file as the truth (see the module docstring)."""

    kind = "file"

    def __init__(self, path: str | Path, *, state: Path, debounce_ms: int = 50) -> None:
        self.path = Path(path)
        where = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]
        self._log = state / f"versions-{where}.log"
        self._debounce_ms = debounce_ms
        self._seen = ""  # the ETag of the last revision read or written here

    # -- reading --------------------------------------------------------------------------------

    async def current(self) -> Revision:
        return await asyncio.to_thread(self.read_revision)

    def read_revision(self) -> Revision:
        """`current`, blocking."""
        with self._locked():
            revision = self._number(self._read())
        self._seen = revision.etag
        return revision

    def _read(self) -> str:
        try:
            with self.path.open("rb") as handle:
                data = handle.read(limits.MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            raise SourceError("unreadable_source", 409, f"cannot read {self.path}: "
                              f"{exc.strerror or exc}") from None
        if len(data) > limits.MAX_DOCUMENT_BYTES:
            raise SourceError("unreadable_source", 409, f"{self.path} is over "
                              f"{limits.MAX_DOCUMENT_BYTES} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError("unreadable_source", 409, f"{self.path} is not UTF-8") from None

    def _number(self, text: str) -> Revision:
        """The revision `text` is, from the version log (lock held): the last entry when it
        is that document, else a new entry."""
        etag = text_etag(text)
        lines = self._entries()
        if not lines or lines[-1] != etag:
            with self._log.open("a", encoding="utf-8") as handle:
                handle.write(etag + "\n")
            lines.append(etag)
        return Revision(len(lines), text, etag)

    def _entries(self) -> list[str]:
        try:
            return self._log.read_text(encoding="utf-8").split()
        except FileNotFoundError:
            return []

    # -- writing --------------------------------------------------------------------------------

    async def propose(self, text: str, base: Revision, data: Any = None) -> Revision:
        return await asyncio.to_thread(self._propose, text, base)

    def _propose(self, text: str, base: Revision) -> Revision:
        refused = self.refusal()
        if refused is not None:
            raise refused
        with self._locked():
            on_disk = self._read()
            if text_etag(on_disk) != base.etag:
                found = self._number(on_disk)
                raise SourceError(
                    "conflict", 409, f"{self.path} changed on disk since version "
                    f"{base.version}: it now holds version {found.version}; apply the change "
                    "to that one", running={"version": base.version, "etag": base.etag},
                    file={"version": found.version, "etag": found.etag})
            try:
                replace_file(self.path, text)
            except OSError as exc:
                raise SourceError("unwritable_source", 409, f"cannot write {self.path}: "
                                  f"{exc.strerror or exc}; nothing changed") from None
            revision = self._number(text)
        self._seen = revision.etag
        return revision

    def refusal(self) -> SourceError | None:
        target = Path(os.path.realpath(self.path))
        if os.access(target, os.W_OK) and os.access(target.parent, os.W_OK | os.X_OK):
            return None
        return SourceError(
            "read_only_source", 409, f"{self.path} is read-only (a mounted ConfigMap?): change "
            "the spec where it comes from, or serve with --store so admin changes have "
            "somewhere to go", source=str(self.path))

    def served(self, revision: Revision) -> None:
        self._seen = revision.etag

    # -- watching -------------------------------------------------------------------------------

    async def changes(self, stop: asyncio.Event) -> AsyncIterator[Revision]:
        from watchfiles import awatch

        while not stop.is_set():
            home, target = await asyncio.to_thread(self._places)
            relevant = _Relevant({home / self.path.name, target}, home)
            async for _batch in awatch(*{home, target.parent}, stop_event=stop, step=10,
                                       debounce=self._debounce_ms, recursive=False,
                                       watch_filter=relevant):
                try:
                    revision = await self.current_if_changed()
                except SourceError as exc:
                    log.warning("%s; the running spec is unchanged", exc)
                    continue
                if revision is not None:
                    yield revision
                if (await asyncio.to_thread(self._places))[1] != target:
                    break  # the file now lives elsewhere (a swapped link): watch it there

    def _places(self) -> tuple[Path, Path]:
        """The directory the spec path is in, and the file it leads to (through links)."""
        return self.path.parent.resolve(), Path(os.path.realpath(self.path))

    async def current_if_changed(self) -> Revision | None:
        """The file's revision when its content differs from the last one seen here."""
        text = await asyncio.to_thread(self._read)
        if text_etag(text) == self._seen:
            return None
        return await self.current()

    def health(self) -> dict[str, Any]:
        return {"kind": self.kind, "ok": True, "path": str(self.path)}

    async def close(self) -> None:
        return None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(self._log.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class _Relevant:
    """The watch filter: changes to the spec path or the file it leads to, and to the links of
    a Kubernetes ConfigMap mount (an update swaps the `..data` symlink and touches nothing
    else). Other files in the directory (logs, notes, editors' swap files) are ignored."""

    names: set[Path]
    home: Path

    def __call__(self, _change: object, name: str) -> bool:
        changed = Path(name)
        return changed in self.names or (changed.name.startswith("..")
                                         and changed.parent == self.home)


def state_for(env: Mapping[str, str] | None = None) -> Path:
    from flowspec.server.guard import state_dir

    return state_dir(env)
