"""The SNMP scanner (issue 4): v1, v2c and v3 walks of switches, routers, firewalls, printers,
UPSes and servers into `fleetgraph.report/1` reports. See docs/discovery-snmp.md.

API for discovery.scan:

    creds = parse_snmp_credentials(toml_document["snmp"], "credentials.toml")
    scan = await scan_snmp_host("10.0.0.1", 161, creds, scanner_id, timeout=2.0, retries=1)
    scan.report  # a Report, or None and scan.error says why
"""

from discovery.snmp.credentials import (
    AUTH_PROTOCOLS,
    PRIV_PROTOCOLS,
    CredentialError,
    SnmpCredential,
    parse_snmp_credential,
    parse_snmp_credentials,
)
from discovery.snmp.scanner import scan_snmp_host, scan_snmp_hosts

__all__ = ["AUTH_PROTOCOLS", "PRIV_PROTOCOLS", "CredentialError", "SnmpCredential", "parse_snmp_credential",
           "parse_snmp_credentials", "scan_snmp_host", "scan_snmp_hosts"]
