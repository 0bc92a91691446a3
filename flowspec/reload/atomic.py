"""Replacing a spec file in one step, so nobody ever reads half of it and nothing is left behind.

The new text goes to a temporary file beside the file it replaces, is flushed to disk, and is
renamed over it; a watcher (or a crash) sees the old text or the new one, never a mix. A
symlinked spec keeps its link: the file it points to is the one replaced. SIGINT, SIGTERM and
SIGHUP wait while the write runs, so stopping `flowspec patch` cannot leave a temporary file; a
`kill -9` can, and the next write removes what a dead process left. A failed write (a full disk,
a read-only directory) raises OSError with the original file untouched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

SUFFIX = ".flowspec-tmp"
_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def replace_file(path: str | Path, text: str) -> Path:
    """Write `text` as the new content of `path` (the target of a symlink). Returns the file
    written. Raises OSError when it cannot be written; the file is then unchanged."""
    target = Path(os.path.realpath(path))
    directory = target.parent
    sweep(target)
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    temp = directory / f".{target.name}.{os.getpid()}.{threading.get_ident()}{SUFFIX}"
    data = text.encode("utf-8")
    with _signals_held():
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(temp, mode)  # the umask may have narrowed it
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        _sync_directory(directory)
    return target


def sweep(target: Path) -> list[Path]:
    """Remove temporary files a process that died while writing `target` left beside it."""
    removed: list[Path] = []
    for leftover in target.parent.glob(f".{target.name}.*{SUFFIX}"):
        parts = leftover.name[len(target.name) + 2:-len(SUFFIX)].split(".")
        try:
            pid = int(parts[0])
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed.append(leftover)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _sync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk too.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP until the block ends (main thread only: elsewhere Python
    code never sees signals anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
