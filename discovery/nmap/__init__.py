"""The nmap scanner: validated targets and options, nmap run as a bounded subprocess, its XML
parsed with every CPE, and one fleetgraph report per host seen (docs/discovery-nmap.md).

    targets = parse_targets("127.0.0.15-19 !127.0.0.17", allowed="127.0.0.0/8")
    options = NmapOptions(ports="22,80,443,2222", service_version=True)
    run = await run_nmap(targets, options, timeout=120)
    for scan in nmap_host_reports(run, scanner_id="scanner-1"):
        ...  # scan.report (fleetgraph.report/1, source kind "nmap") or scan.error
"""

from discovery.nmap.errors import (
    NmapCrashed,
    NmapError,
    NmapFailed,
    NmapNotFound,
    NmapOptionsError,
    NmapTimeout,
    NmapXmlError,
    TargetError,
)
from discovery.nmap.options import SCRIPT_ALLOW_LIST, NmapOptions, build_nmap_argv
from discovery.nmap.report import nmap_host_reports
from discovery.nmap.runner import NmapInstall, locate_nmap, run_nmap
from discovery.nmap.targets import Target, parse_targets
from discovery.nmap.xml import NmapHost, NmapPort, NmapRun, NmapService, parse_nmap_xml

__all__ = [
    "SCRIPT_ALLOW_LIST", "NmapCrashed", "NmapError", "NmapFailed", "NmapHost", "NmapInstall", "NmapNotFound",
    "NmapOptions", "NmapOptionsError", "NmapPort", "NmapRun", "NmapService", "NmapTimeout", "NmapXmlError",
    "Target", "TargetError", "build_nmap_argv", "locate_nmap", "nmap_host_reports", "parse_nmap_xml",
    "parse_targets", "run_nmap",
]
