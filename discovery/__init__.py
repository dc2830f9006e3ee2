"""Agentless scanners (nmap, SNMP, SSH) that report like agents. See issue 4."""
