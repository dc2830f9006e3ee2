"""Write the report JSON Schema generated from the structs: `python -m cmdb.jsonschema [PATH]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cmdb.report import report_schema

SCHEMA_PATH = Path(__file__).parent / "schema" / "report-v1.schema.json"


def render() -> str:
    return json.dumps(report_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_PATH
    target.write_text(render())
    print(f"wrote {target}")
