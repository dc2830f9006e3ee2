"""Parity with FusionInventory agent 2.6 on this machine (issue 3): one Fusion `--local` inventory
and one `fleetgraph agent run --dry-run`, compared. Packages: ours == `dpkg-query -W` == Fusion's
SOFTWARES. Hardware: every Fusion field of BIOS, HARDWARE, CPUS, MEMORIES, STORAGES, DRIVES,
NETWORKS and OPERATINGSYSTEM that is non-empty here has a non-empty counterpart in our report,
through the explicit map in bench/fusion_parity.py (bench/agent_vs_fusion.py prints the same
table beside the timings). No timing is asserted."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from bench.agent_vs_fusion import fusion_command, ours_command
from bench.fusion_parity import (
    FIELD_MAP,
    FUSION,
    NOT_COMPARED,
    compare_fields,
    dpkg_package_count,
    fusion_deb_count,
    parse_fusion_xml,
)
from cmdb.model import CI_CLASSES
from cmdb.report import NAME_PATTERN

from .lab import REPO

needs_fusion = pytest.mark.skipif(
    shutil.which(FUSION) is None,
    reason=f"{FUSION} is not installed (apt-get install -y {FUSION}; `make test` installs it)")


@pytest.fixture(scope="module")
def fusion(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fusion")
    conf, out = tmp / "empty.cfg", tmp / "out"
    conf.write_text("")
    out.mkdir()
    done = subprocess.run(fusion_command(conf, out), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, f"{FUSION} exited {done.returncode}:\n{done.stderr[-3000:]}"
    files = sorted(out.glob("*.ocs"))
    assert files, f"{FUSION} wrote no inventory into {out}:\n{done.stderr[-3000:]}"
    return parse_fusion_xml(files[0])


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ours")
    output = tmp / "report.json"
    done = subprocess.run(ours_command(output, tmp / "state"), cwd=REPO, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, f"fleetgraph agent run --dry-run exited {done.returncode}:\n{done.stderr}"
    return json.loads(output.read_bytes())


def test_the_field_map_names_real_classes_and_valid_attribute_names():
    assert not set(FIELD_MAP) & set(NOT_COMPARED)
    for key, target in FIELD_MAP.items():
        cls, _, attr = target.partition(".")
        assert cls in CI_CLASSES, f"{key} -> {target}: no CI class {cls!r} in cmdb/model.py"
        assert re.match(NAME_PATTERN, attr), f"{key} -> {target}: {attr!r} is not an attribute name"


@needs_fusion
def test_package_counts_equal_dpkg_and_fusion(fusion, ours):
    ours_deb = [i for i in ours["items"] if i["class"] == "SoftwareInstall"
                and i.get("identifiers", {}).get("package", "").startswith("deb:")]
    dpkg = dpkg_package_count()
    assert len(ours_deb) == dpkg, f"we report {len(ours_deb)} deb packages, dpkg-query -W lists {dpkg}"
    # Fusion keeps only packages whose status ends in " installed"; so do we, in that attribute.
    assert fusion_deb_count(fusion) == dpkg, (
        f"Fusion lists {fusion_deb_count(fusion)} deb SOFTWARES, dpkg-query -W {dpkg} "
        "(packages in a state other than installed, e.g. rc, are listed by dpkg only; or apt changed "
        "the package set while this test ran)")


@needs_fusion
def test_every_non_empty_fusion_hardware_field_has_a_counterpart(fusion, ours):
    checks = compare_fields(fusion, ours)
    unmapped = [c.key for c in checks if c.status == "UNMAPPED"]
    assert not unmapped, f"Fusion fields non-empty here that bench/fusion_parity.py does not map: {unmapped}"
    missing = [f"{c.key} ({c.fusion_value!r}) -> {c.target}: {c.status}" for c in checks
               if c.target is not None and not c.present]
    assert not missing, "our report lacks what Fusion reports here:\n  " + "\n  ".join(missing)
