"""The watched spec file: a save becomes a reload, through the same pipeline as an admin PATCH.

The directory is watched, not the file, so editors that save by writing a new file and renaming
it (vim, most IDEs) and Kubernetes ConfigMap updates (a symlink swap) are seen too. A save that
does not validate is logged with its located errors and changes nothing; the last good version
keeps serving whatever the file holds (a file over `limits.MAX_DOCUMENT_BYTES` is not read).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from flowspec import limits
from flowspec.reload.service import Reloader, Result

log = logging.getLogger("flowspec.reload")


async def watch_file(path: str | Path, reloader: Reloader, stop: asyncio.Event, *,
                     debounce_ms: int = 50) -> None:
    """Reload `path` into `reloader` on every change of its content until `stop` is set."""
    from watchfiles import awatch

    target = Path(path)
    async for _changes in awatch(target.parent, stop_event=stop, debounce=debounce_ms,
                                 step=10, recursive=False):
        try:
            await reload_file(target, reloader)
        except Exception as exc:  # supervision boundary: a file must never stop the server
            log.error("%s: could not be reloaded; the running spec is unchanged", target,
                      exc_info=exc)


async def reload_file(path: Path, reloader: Reloader) -> Result | None:
    """Read `path` and apply it when its text differs from the running spec's."""
    try:
        text = await asyncio.to_thread(_read, path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.warning("cannot read %s: %s; the running spec is unchanged", path, exc)
        return None
    if text == reloader.store.text:
        return None  # another file in the directory, or our own write
    result = await reloader.replace(text, origin=str(path))
    if result.ok:
        log.info("%s: now version %s", path, result.body.get("version"))
    else:
        for error in result.body.get("errors", []):
            log.warning("%s:%s:%s %s: %s", error.get("source"), error.get("line"),
                        error.get("column"), error.get("pointer"), error.get("message"))
    return result


def _read(path: Path) -> str:
    with path.open("rb") as handle:
        data = handle.read(limits.MAX_DOCUMENT_BYTES + 1)
    if len(data) > limits.MAX_DOCUMENT_BYTES:
        raise ValueError(f"it is over {limits.MAX_DOCUMENT_BYTES} bytes")
    return data.decode("utf-8")
