"""The whole suite runs with the example node plugin (examples/plugin/) installed, as a user has it.

It is installed here once per environment, before any test imports flowspec's node families:
editable, with no dependencies and no build isolation, so it needs no network (setuptools and
wheel come with the `test` extra). A lock keeps two test runs sharing a virtualenv from
installing it at the same time.
"""

from __future__ import annotations

import fcntl
import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin"
PLUGIN_DIST = "flowspec-redact"


def _installed() -> importlib.metadata.Distribution | None:
    try:
        dist = importlib.metadata.distribution(PLUGIN_DIST)
    except importlib.metadata.PackageNotFoundError:
        return None
    # Another checkout's copy would test the wrong code.
    return dist if PLUGIN.as_uri() in (dist.read_text("direct_url.json") or "") else None


def _install() -> None:
    lock = Path(sys.prefix) / ".flowspec-plugin-install.lock"
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if _installed() is None:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                 "--no-build-isolation", "--no-index", "--disable-pip-version-check", "-e",
                 str(PLUGIN)], capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise pytest.UsageError(
                    f"could not install {PLUGIN} into this environment (the tests need it; "
                    "`pip install -e '.[test]'` provides what it builds with):\n"
                    f"{result.stdout}{result.stderr}")
    importlib.invalidate_caches()
    dist = _installed()
    assert dist is not None
    # A new install's .pth file is read when Python starts; this process started before it.
    for file in dist.files or ():
        if file.name.endswith(".pth"):
            for line in Path(str(file.locate())).read_text().splitlines():
                if line and not line.startswith(("#", "import")) and line not in sys.path:
                    sys.path.append(line)


if "flowspec.families.registry" in sys.modules:
    raise pytest.UsageError("flowspec's node families were loaded before tests/conftest.py; "
                            "the example plugin would be missing from them")
_install()
