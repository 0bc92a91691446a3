"""Write schemas/flowspec.schema.json and schemas/REFERENCE.md from the models, and
schemas/flowspec-test.schema.json (a bot's test files) from the scenario models.

The spec files describe the built-in node families only: node types of installed packages appear in
`flowspec schema`'s output on the machine that has them, never in the committed files.
`--check` writes nothing and exits 1 when either file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flowspec.families.registry import builtin_families  # noqa: E402
from flowspec.scenario.load import scenario_schema_text  # noqa: E402
from flowspec.spec.reference import reference_markdown  # noqa: E402
from flowspec.spec.schema import schema_text  # noqa: E402

SCHEMA = ROOT / "schemas" / "flowspec.schema.json"
REFERENCE = ROOT / "schemas" / "REFERENCE.md"
TEST_SCHEMA = ROOT / "schemas" / "flowspec-test.schema.json"


def run(check: bool) -> int:
    families = builtin_families()
    code = 0
    outputs = ((SCHEMA, schema_text(families)), (REFERENCE, reference_markdown(families)),
               (TEST_SCHEMA, scenario_schema_text()))
    for path, text in outputs:
        if not check:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        elif not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"{path} is stale: regenerate it with `python tools/gen_schema.py`",
                  file=sys.stderr)
            code = 1
        else:
            print(f"{path} is up to date")
    return code


if __name__ == "__main__":
    sys.exit(run("--check" in sys.argv[1:]))
