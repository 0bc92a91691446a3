"""Write schemas/flowspec.schema.json and schemas/REFERENCE.md from the models.

`--check` writes nothing and exits 1 when either file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowspec.cli import main  # noqa: E402

SCHEMA = ROOT / "schemas" / "flowspec.schema.json"
REFERENCE = ROOT / "schemas" / "REFERENCE.md"


def run(check: bool) -> int:
    flag = "--check" if check else "--output"
    codes = [main(["schema", flag, str(SCHEMA)]), main(["schema", "--markdown", flag,
                                                         str(REFERENCE)])]
    return max(codes)


if __name__ == "__main__":
    sys.exit(run("--check" in sys.argv[1:]))
