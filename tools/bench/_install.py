"""Installed size of a fresh `pip install .` (flowspec) and `pip install pipecat-ai==1.14.0`.

Each install goes into a new venv in a temporary directory; the size is `du` of its site-packages
minus an empty venv's (pip and setuptools). Pipecat's figure is cached in `pipecat_install.json`
(its install is slow and does not change); flowspec is re-measured every run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PIPECAT_CACHE = HERE / "pipecat_install.json"
PIPECAT_REQ = "pipecat-ai==1.14.0"
MIB = 1024 * 1024


def _du(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def _site(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def _dists(venv: Path) -> int:
    return len(list(_site(venv).glob("*.dist-info")))


def measure(requirement: str, python: str = sys.executable) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flowspec-install-") as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        for venv in (empty, full):
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
        base_bytes, base_dists = _du(_site(empty)), _dists(empty)
        t = time.perf_counter()
        proc = subprocess.run([str(full / "bin" / "pip"), "install", "--quiet",
                               "--no-cache-dir", requirement], capture_output=True, text=True,
                              cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"pip install {requirement} failed:\n{proc.stderr[-2000:]}")
        seconds = time.perf_counter() - t
        site = _site(full)
        size = _du(site) - base_bytes
        dirs = [d for d in site.iterdir() if d.is_dir() and not d.name.endswith(".dist-info")
                and d.name not in ("pip", "setuptools", "_distutils_hack", "__pycache__")]
        largest = sorted(((d.name, _du(d) / MIB) for d in dirs), key=lambda x: -x[1])[:5]
        return {"requirement": requirement, "mib": size / MIB, "install_s": seconds,
                "distributions": _dists(full) - base_dists, "largest": largest,
                "date": time.strftime("%Y-%m-%d")}


def flowspec_size() -> dict[str, Any]:
    return measure(str(ROOT))


def pipecat_size(refresh: bool = False) -> dict[str, Any]:
    if PIPECAT_CACHE.exists() and not refresh:
        return {**json.loads(PIPECAT_CACHE.read_text()), "cached": True}
    result = measure(PIPECAT_REQ)
    PIPECAT_CACHE.write_text(json.dumps(result, indent=1) + "\n")
    return {**result, "cached": False}


if __name__ == "__main__":
    print(json.dumps({"flowspec": flowspec_size(),
                      "pipecat": pipecat_size(refresh="--refresh" in sys.argv)}))
