"""dmidecode: the parser and its BIOS/system/memory mappers against every recorded case of GLPI
agent that has an expectation, every other recorded output parsed without error, and the
collector on recorded servers (this machine has no DMI at all)."""

from __future__ import annotations

import json

import pytest

from agent.collectors.hardware import HardwareCollector
from agent.collectors.hardware.dmi import DMIDECODE, merged_dmi
from agent.collectors.hardware.dmidecode import (
    bios_from_dmidecode,
    computer_facts_from_dmidecode,
    hardware_from_dmidecode,
    parse_dmidecode,
)
from agent.collectors.hardware.memory import jedec_manufacturer, memory_slots, slot_names
from tests.unit.agent.conftest import GLPI, RecordedContext

DMI = GLPI / "dmidecode"
RAW = sorted(p.relative_to(DMI).as_posix() for p in DMI.rglob("*") if p.is_file() and "expected" not in p.parts)


def _expectations(name: str) -> list[tuple[str, dict]]:
    cases = []
    for path in sorted((DMI / "expected").rglob("*.json")):
        entry = json.loads(path.read_text())["expected"].get(name)
        if entry is not None:
            cases.append((path.stem, entry))
    return cases


def _text(entry: dict) -> str:
    return (GLPI / entry["inputs"]["file"]).read_text(encoding="utf-8", errors="replace")


def _glpi_str(value) -> str | None:
    """GLPI compares scalars as strings: 1 and "1" are the same value."""
    return None if value is None else str(value)


@pytest.mark.parametrize("raw", RAW)
def test_every_recorded_output_parses(raw):
    infos = parse_dmidecode((DMI / raw).read_text(encoding="utf-8", errors="replace"))
    for dmi_type, structures in infos.items():
        assert dmi_type.isdigit() and structures and all(structures)
        for block in structures:
            assert all(v == v.strip() and v for v in block.values())
    bios_from_dmidecode(infos), computer_facts_from_dmidecode(infos), memory_slots(infos)


@pytest.mark.parametrize(("case", "entry"), _expectations("dmidecode_infos"), ids=lambda v: v if isinstance(v, str) else "")
def test_dmidecode_infos_match_glpi(case, entry):
    expected = {t: [{k: _glpi_str(v) for k, v in block.items()} for block in blocks]
                for t, blocks in entry["value"].items()}
    assert parse_dmidecode(_text(entry)) == expected


@pytest.mark.parametrize(("case", "entry"), _expectations("bios"), ids=lambda v: v if isinstance(v, str) else "")
def test_bios_matches_glpi(case, entry):
    expected = {k: _glpi_str(v) for k, v in entry["value"].items()}
    assert bios_from_dmidecode(parse_dmidecode(_text(entry))).glpi() == expected


@pytest.mark.parametrize(("case", "entry"), _expectations("hardware"), ids=lambda v: v if isinstance(v, str) else "")
def test_hardware_matches_glpi(case, entry):
    uuid, chassis = hardware_from_dmidecode(parse_dmidecode(_text(entry)))
    assert {"UUID": uuid, "CHASSIS_TYPE": chassis} == entry["value"]


# Where fleetgraph deliberately says something else than GLPI, per (case, slot ordinal, field).
MEMORY_DEVIATIONS = {
    # JEDEC codes decoded (0xCE Samsung, 7F98 Kingston): GLPI only knows makers by part number.
    ("S3000AHLX", 1, "MANUFACTURER"): "Samsung", ("S3000AHLX", 2, "MANUFACTURER"): "Kingston",
    ("S3000AHLX", 3, "MANUFACTURER"): "Samsung",
    # Samsung part numbers ("M3 93T6450FZ0-CCC") and G.Skill's ("F3-12800CL9-2GBXL").
    ("openbsd-3.8", 1, "MANUFACTURER"): "Samsung", ("openbsd-3.8", 2, "MANUFACTURER"): "Samsung",
    ("rhel-3.4", 1, "MANUFACTURER"): "Samsung", ("rhel-3.4", 2, "MANUFACTURER"): "Samsung",
    ("windows-7", 2, "MANUFACTURER"): "G.Skill", ("windows-7", 4, "MANUFACTURER"): "G.Skill",
    # GLPI's part-number database knows this Brazilian OEM (JEDEC 0416); our short list does not.
    ("positivo-informatica", 2, "MANUFACTURER"): None,
    # GLPI invents a form factor for Hyper-V; an unknown form factor is absent here.
    ("windows-hyperV-2019", 1, "DESCRIPTION"): None, ("windows-hyperV-2019", 2, "DESCRIPTION"): None,
    # "Other" is SMBIOS for "not one of the listed values": it says nothing.
    ("dell-fx160", 2, "DESCRIPTION"): None,
}


def _ours(slot) -> dict[str, str | None]:
    return {k: _glpi_str(v) for k, v in {
        "NUMSLOTS": slot.ordinal, "CAPTION": slot.slot, "DESCRIPTION": slot.form_factor, "TYPE": slot.type,
        "SPEED": slot.speed_mts, "CAPACITY": slot.size_bytes // 2**20 if slot.size_bytes else None,
        "MANUFACTURER": slot.manufacturer, "SERIALNUMBER": slot.serial, "MODEL": slot.part_number,
        "MEMORYCORRECTION": slot.error_correction}.items()}


@pytest.mark.parametrize(("case", "entry"), _expectations("memories"), ids=lambda v: v if isinstance(v, str) else "")
def test_memories_match_glpi_field_by_field(case, entry):
    slots = memory_slots(parse_dmidecode(_text(entry)))
    assert len(slots) == len(entry["value"])
    for slot, glpi in zip(slots, entry["value"], strict=True):
        ours = _ours(slot)
        for field, glpi_value in glpi.items():
            glpi_value, key = _glpi_str(glpi_value), (case, slot.ordinal, field)
            if key in MEMORY_DEVIATIONS:
                assert ours[field] == MEMORY_DEVIATIONS[key], key
            elif field == "SERIALNUMBER" and glpi_value and (
                    glpi_value.lower().startswith(("sernum", "no dimm")) or set(glpi_value) == {"0"}):
                assert ours[field] is None, key  # placeholders GLPI passes on: absent here
            elif field == "TYPE" and glpi_value == "Other":
                assert ours[field] is None, key
            else:
                assert ours[field] == glpi_value, key
        # Type 6 (very old firmware): GLPI gives no caption; the socket designation is ours.
        for field in set(ours) - set(glpi):
            assert field == "CAPTION" or ours[field] is None, (case, slot.ordinal, field)


def test_jedec_codes():
    assert jedec_manufacturer("80AD000080AD") == "Hynix"
    assert jedec_manufacturer("00AD00B300AD") == "Hynix"
    assert jedec_manufacturer("832500008325") == "KingMax"
    assert jedec_manufacturer("7F7FFE0000000000") == "Elpida"
    assert jedec_manufacturer("0xCE00000000000000") == "Samsung"
    assert jedec_manufacturer("859B") == "Crucial"
    assert jedec_manufacturer("0000") is None and jedec_manufacturer("7F7F") is None


def test_slot_names_are_unique():
    slots = memory_slots(parse_dmidecode((DMI / "linux-1").read_text()))
    assert len(set(slot_names(slots))) == len(slots)
    text = "\n".join(f"Handle 0x{i:04X}, DMI type 17, 40 bytes\nMemory Device\n\tSize: 8 GB\n"
                     f"\tLocator: DIMM0\n\tBank Locator: BANK {i}\n" for i in range(2))
    assert slot_names(memory_slots(parse_dmidecode(text))) == ["BANK 0 / DIMM0", "BANK 1 / DIMM0"]


def _server(case: str, **files: str) -> RecordedContext:
    return RecordedContext(files={"/proc/cpuinfo": "processor : 0\n", **files},
                           commands={tuple(DMIDECODE): (DMI / case).read_text()})


def test_collector_reads_dimms_and_dmi_from_dmidecode():
    out = HardwareCollector().collect(_server("dell-r640-1"))
    computer = out.items["computer"]
    dimms = [i for i in out.items.values() if i.class_ == "MemoryModule"]
    slots = memory_slots(parse_dmidecode((DMI / "dell-r640-1").read_text()))
    assert len(dimms) == sum(1 for s in slots if s.size_bytes) and dimms
    assert computer.attributes["memory_slots"] == len(slots)
    a1 = out.items["dimm:A1"]
    assert a1.identifiers == {"slot": "A1", "serial": "F16A7647"}
    assert a1.attributes == {  # Bank Locator "Not Specified": absent
        "slot": "A1", "locator": "A1", "form_factor": "DIMM", "type": "DDR4", "speed_mts": 3200,
        "size_bytes": 8 * 2**30, "manufacturer": "Micron", "serial": "F16A7647",
        "part_number": "9ASF1G72PZ-3G2E2", "error_correction": "Multi-bit ECC"}
    assert ("computer", "HAS_COMPONENT", "dimm:A1") in out.relations
    assert computer.attributes["manufacturer"] == "Dell Inc."
    assert computer.attributes["chassis_type"] == "Rack Mount Chassis"
    assert computer.identifiers["serial"] == computer.attributes["serial"]


def test_collector_skips_empty_slots_and_junk():
    out = HardwareCollector().collect(_server("hp-dl180"))
    dimms = {i.ref: i for i in out.items.values() if i.class_ == "MemoryModule"}
    assert all(i.attributes["size_bytes"] > 0 for i in dimms.values())
    assert all(i.attributes.get("serial", "x")[:6].lower() != "sernum" for i in dimms.values())
    assert len(dimms) < out.items["computer"].attributes["memory_slots"]


def test_sysfs_first_dmidecode_fills_the_gaps():
    infos = parse_dmidecode((DMI / "dell-r640-1").read_text())
    sysfs = {"manufacturer": "Dell Inc.", "model": "PowerEdge R640", "serial": None, "bios_version": "9.9.9"}
    merged = merged_dmi(sysfs, infos)
    assert merged["bios_version"] == "9.9.9"  # sysfs wins
    assert merged["serial"] == computer_facts_from_dmidecode(infos)["serial"] and merged["serial"]
    assert merged_dmi({}, {}) == dict.fromkeys(merged)  # nothing from either: every value unknown


def test_lenovo_model_is_the_version_string():
    bios = bios_from_dmidecode(parse_dmidecode((DMI / "lenovo-thinkpad").read_text()))
    facts = computer_facts_from_dmidecode(parse_dmidecode((DMI / "lenovo-thinkpad").read_text()))
    assert facts["model"] == bios.model and facts["model"].startswith("Think")


def test_failing_dmidecode_leaves_dmi_absent():
    from agent.context import CommandFailed

    ctx = RecordedContext(files={"/proc/cpuinfo": "processor : 0\n"},
                          commands={tuple(DMIDECODE): CommandFailed(DMIDECODE, 1, "/dev/mem: No such file")})
    attrs = HardwareCollector().collect(ctx).items["computer"].attributes
    assert not {"manufacturer", "serial", "system_uuid", "bios_vendor", "memory_slots"} & set(attrs)
