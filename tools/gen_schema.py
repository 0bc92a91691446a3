"""Write schemas/flowspec.schema.json from the models; `--check` exits 1 when it is stale."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowspec.cli import main  # noqa: E402

TARGET = ROOT / "schemas" / "flowspec.schema.json"

if __name__ == "__main__":
    flag = "--check" if "--check" in sys.argv[1:] else "--output"
    sys.exit(main(["schema", flag, str(TARGET)]))
