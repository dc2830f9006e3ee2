"""/proc/cpuinfo against every GLPI expectation: the raw records (getCPUsFromProc) and the CPUs
where GLPI's semantics and ours meet; the reported clock is the rated one, never the current."""

from __future__ import annotations

import json

import pytest

from agent.collectors.hardware.cpu import CPUFREQ_MAX, CpuSummary, cpu_max_mhz, cpuinfo_records, parse_cpuinfo
from tests.unit.agent.conftest import GLPI, RecordedContext

CASES = {p.stem: json.loads(p.read_text())["expected"] for p in sorted((GLPI / "cpuinfo" / "expected").glob("*.json"))}
RECORDS = sorted(c for c, e in CASES.items() if "cpuinfo_records" in e)
CPUS = sorted(c for c, e in CASES.items() if "cpus" in e)


@pytest.mark.parametrize("case", RECORDS)
def test_records_match_glpi(case):
    entry = CASES[case]["cpuinfo_records"]
    expected = [{k: str(v) for k, v in record.items()} for record in entry["value"]]
    assert cpuinfo_records((GLPI / entry["inputs"]["file"]).read_text()) == expected


# GLPI quirks we do not copy: the Pi on bookworm is named by its processor number ("0".."3");
# GLPI gives Alpha no name where cpuinfo says "cpu model : EV68CB".
OUR_MODEL = {"linux-raspberry-pi-3-model-b-on-bookworm": None, "linux-alpha-1": "EV68CB"}


@pytest.mark.parametrize("case", CPUS)
def test_summary_matches_glpi_cpus(case):
    entry = CASES[case]["cpus"]
    inputs = entry["inputs"]
    cpu = parse_cpuinfo((GLPI / (inputs.get("cpuinfo") or inputs["file"])).read_text())
    glpi = entry["value"]
    first = glpi[0]
    assert cpu.model == OUR_MODEL.get(case, first.get("NAME"))
    if first.get("MANUFACTURER"):
        assert cpu.vendor == first["MANUFACTURER"]
    # GLPI's SPEED is the rated clock, ours too (the current one, e.g. 800 MHz on a throttled
    # Atom, is not reported). GLPI has none for ARM/SPARC/MIPS, where cpuinfo has none either.
    if first.get("SPEED") is not None:
        assert cpu.nominal_mhz == int(first["SPEED"])
    else:
        assert cpu.nominal_mhz is None
    merged_with_dmidecode = inputs.get("dmidecode") is not None
    if cpu.sockets is not None and not merged_with_dmidecode:
        assert cpu.sockets == len(glpi)
        assert cpu.cores == sum(int(c["CORE"]) for c in glpi)
    if merged_with_dmidecode and cpu.sockets is not None:  # dmidecode type 4 agrees with cpuinfo
        assert (cpu.sockets, cpu.cores) == (len(glpi), sum(int(c["CORE"]) for c in glpi))
        assert cpu.threads == sum(int(c["CORE"]) * int(c["THREAD"]) for c in glpi)


def test_threads_are_the_online_processors():
    # GLPI: 4 cores x 1 thread. The kernel lists 3 processors: one core is offline.
    dl180 = parse_cpuinfo((GLPI / "cpuinfo" / "linux-hp-dl180").read_text())
    assert (dl180.cores, dl180.threads) == (4, 3)


def test_reported_clock_is_rated_not_current():
    atom = parse_cpuinfo((GLPI / "cpuinfo" / "linux-686-samsung-nc10-1").read_text())
    assert atom.mhz == 800.0 and atom.nominal_mhz == 1600  # throttled now, 1.60 GHz rated
    assert cpu_max_mhz(RecordedContext(), atom) == 1600
    assert cpu_max_mhz(RecordedContext(files={CPUFREQ_MAX: "3400000\n"}), atom) == 3400
    no_name = CpuSummary(model="Intel(R) Xeon(R) Processor", mhz=2593.906)  # a VM: no cpufreq
    assert cpu_max_mhz(RecordedContext(), no_name) == 2594
    assert cpu_max_mhz(RecordedContext(), CpuSummary()) is None


def test_power_and_alpha_clocks():
    assert parse_cpuinfo((GLPI / "cpuinfo" / "linux-ppc-2").read_text()).nominal_mhz == 1452
    assert parse_cpuinfo((GLPI / "cpuinfo" / "linux-alpha-1").read_text()).nominal_mhz == 1250
