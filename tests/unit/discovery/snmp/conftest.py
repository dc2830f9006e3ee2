"""Where the recorded devices live: the shared corpora (with ground truth) and the snmpsim-data
package's recordings, plus this repo's printer recordings (tests/fixtures/snmp)."""

from __future__ import annotations

import json
from pathlib import Path

import snmpsim_data

REPO = Path(__file__).resolve().parents[4]
CORPORA = REPO.parent / "shared" / "corpora" / "snmp"
if not CORPORA.is_dir():  # CI clones the repo beside shared/, like the work tree here
    CORPORA = Path("/work/shared/corpora/snmp")
SNMPSIM_DATA = Path(snmpsim_data.__file__).parent / "data"
FIXTURES = REPO / "tests" / "fixtures" / "snmp"


def corpora_devices() -> list[str]:
    return sorted(p.stem for p in (CORPORA / "snmpsim").glob("*.snmprec"))


def corpora_expected(community: str) -> dict:
    return json.loads((CORPORA / "expected" / f"{community}.json").read_text())


def snmpsim_data_devices() -> list[str]:
    return sorted(str(p.relative_to(SNMPSIM_DATA)).split(".snmprec")[0]
                  for p in SNMPSIM_DATA.rglob("*.snmprec*"))


def snmpsim_data_path(name: str) -> Path:
    plain = SNMPSIM_DATA / f"{name}.snmprec"
    return plain if plain.exists() else SNMPSIM_DATA / f"{name}.snmprec.bz2"


def printer_cases() -> list[str]:
    return sorted(p.name for p in (FIXTURES / "printers").iterdir() if p.is_dir())
