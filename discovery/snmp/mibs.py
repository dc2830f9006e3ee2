"""Numeric OIDs of every object the scanner reads, one place (no MIB files: pysnmp bundles no
IF-/HOST-RESOURCES-/ENTITY-MIB, net-snmp's tools ship none on Debian, and name lookups cost time).

Tables are given as their *entry* OID plus the column numbers read; `WALKS` says which column
subtrees each collector walks. Counters are never walked: they change every second and would
only cost requests.
"""

from __future__ import annotations

# SNMPv2-MIB system group (scalars)
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SYS_CONTACT = "1.3.6.1.2.1.1.4.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"
SYS_SERVICES = "1.3.6.1.2.1.1.7.0"
SYSTEM_SCALARS = (SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_CONTACT, SYS_NAME, SYS_LOCATION, SYS_SERVICES)

# IF-MIB
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IF_COLUMNS = {1: "index", 2: "descr", 3: "type", 4: "mtu", 5: "speed", 6: "phys_address", 7: "admin_status",
              8: "oper_status"}
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
IFX_COLUMNS = {1: "name", 15: "high_speed", 18: "alias"}

# IP-MIB: addresses (legacy IPv4 table and the RFC 4293 table) and the ARP/ND caches
IP_AD_ENTRY = "1.3.6.1.2.1.4.20.1"
IP_AD_COLUMNS = {1: "address", 2: "if_index", 3: "netmask"}
IP_ADDRESS_ENTRY = "1.3.6.1.2.1.4.34.1"
IP_ADDRESS_COLUMNS = {3: "if_index", 4: "type", 5: "prefix", 7: "status"}
IP_NET_TO_MEDIA_ENTRY = "1.3.6.1.2.1.4.22.1"
IP_NET_TO_MEDIA_COLUMNS = {2: "phys_address", 4: "type"}
IP_NET_TO_PHYSICAL_ENTRY = "1.3.6.1.2.1.4.35.1"
IP_NET_TO_PHYSICAL_COLUMNS = {4: "phys_address", 6: "type"}

# ENTITY-MIB entPhysicalTable
ENT_PHYSICAL_ENTRY = "1.3.6.1.2.1.47.1.1.1.1"
ENT_PHYSICAL_COLUMNS = {2: "descr", 4: "contained_in", 5: "class", 7: "name", 8: "hardware_rev",
                        9: "firmware_rev", 10: "software_rev", 11: "serial", 12: "manufacturer", 13: "model"}

# HOST-RESOURCES-MIB
HR_MEMORY_SIZE = "1.3.6.1.2.1.25.2.2.0"
HR_STORAGE_ENTRY = "1.3.6.1.2.1.25.2.3.1"
HR_STORAGE_COLUMNS = {2: "type", 3: "descr", 4: "units", 5: "size", 6: "used"}
HR_DEVICE_ENTRY = "1.3.6.1.2.1.25.3.2.1"
HR_DEVICE_COLUMNS = {2: "type", 3: "descr", 5: "status"}
HR_DISK_STORAGE_CAPACITY = "1.3.6.1.2.1.25.3.6.1.4"
HR_FS_ENTRY = "1.3.6.1.2.1.25.3.8.1"
HR_FS_COLUMNS = {2: "mount", 3: "remote", 4: "type", 7: "storage_index"}
HR_SW_RUN_ENTRY = "1.3.6.1.2.1.25.4.2.1"
HR_SW_RUN_COLUMNS = {2: "name", 4: "path"}
HR_SW_INSTALLED_ENTRY = "1.3.6.1.2.1.25.6.3.1"
HR_SW_INSTALLED_COLUMNS = {2: "name", 4: "type", 5: "date"}
HR_PRINTER_STATUS = "1.3.6.1.2.1.25.3.5.1.1"

# TCP-MIB / UDP-MIB listeners (RFC 4022 / 4113) and their RFC 1213 predecessors
TCP_LISTENER_PROCESS = "1.3.6.1.2.1.6.20.1.4"
TCP_CONN_STATE = "1.3.6.1.2.1.6.13.1.1"
UDP_ENDPOINT_PROCESS = "1.3.6.1.2.1.7.7.1.8"
UDP_LOCAL_ADDRESS = "1.3.6.1.2.1.7.5.1.1"

# LLDP-MIB (IEEE 802.1AB-2005)
LLDP_LOC_CHASSIS_ID_SUBTYPE = "1.0.8802.1.1.2.1.3.1.0"
LLDP_LOC_CHASSIS_ID = "1.0.8802.1.1.2.1.3.2.0"
LLDP_LOC_SYS_NAME = "1.0.8802.1.1.2.1.3.3.0"
LLDP_LOC_PORT_ENTRY = "1.0.8802.1.1.2.1.3.7.1"
LLDP_LOC_PORT_COLUMNS = {2: "id_subtype", 3: "id", 4: "desc"}
LLDP_REM_ENTRY = "1.0.8802.1.1.2.1.4.1.1"
LLDP_REM_COLUMNS = {4: "chassis_id_subtype", 5: "chassis_id", 6: "port_id_subtype", 7: "port_id", 8: "port_desc",
                    9: "sys_name", 10: "sys_desc", 12: "capabilities"}
LLDP_REM_MAN_ADDR_IF_SUBTYPE = "1.0.8802.1.1.2.1.4.2.1.3"

# CISCO-CDP-MIB cdpCacheTable
CDP_CACHE_ENTRY = "1.3.6.1.4.1.9.9.23.1.2.1.1"
CDP_CACHE_COLUMNS = {3: "address_type", 4: "address", 5: "version", 6: "device_id", 7: "device_port", 8: "platform",
                     9: "capabilities"}
CDP_GLOBAL_RUN = "1.3.6.1.4.1.9.9.23.1.3.1.0"  # CDP enabled: an empty cache is then a complete answer

# BRIDGE-MIB / Q-BRIDGE-MIB forwarding databases
DOT1D_BASE_BRIDGE_ADDRESS = "1.3.6.1.2.1.17.1.1.0"
DOT1D_BASE_PORT_IF_INDEX = "1.3.6.1.2.1.17.1.4.1.2"
DOT1D_TP_FDB_ENTRY = "1.3.6.1.2.1.17.4.3.1"
DOT1D_TP_FDB_COLUMNS = {2: "port", 3: "status"}
DOT1Q_TP_FDB_ENTRY = "1.3.6.1.2.1.17.7.1.2.2.1"
DOT1Q_TP_FDB_COLUMNS = {2: "port", 3: "status"}

# Printer-MIB (RFC 3805)
PRT_GENERAL_SERIAL = "1.3.6.1.2.1.43.5.1.1.17"
PRT_MARKER_LIFE_COUNT = "1.3.6.1.2.1.43.10.2.1.4"
PRT_MARKER_COUNTER_UNIT = "1.3.6.1.2.1.43.10.2.1.3"
PRT_SUPPLIES_ENTRY = "1.3.6.1.2.1.43.11.1.1"
PRT_SUPPLIES_COLUMNS = {4: "class", 5: "type", 6: "descr", 7: "unit", 8: "max_capacity", 9: "level"}

# FORCE10-SMI chassis MIB stack units (Dell Force10 S-series: no ENTITY-MIB)
F10_STACK_UNIT_ENTRY = "1.3.6.1.4.1.6027.3.10.1.2.2.1"
F10_STACK_UNIT_COLUMNS = {2: "number", 7: "model", 9: "descr", 10: "firmware", 12: "serial", 21: "revision"}


def columns(entry: str, numbers) -> tuple[str, ...]:
    return tuple(f"{entry}.{n}" for n in numbers)


# The subtrees each collector walks (in addition to the system scalars every scan GETs).
WALKS: dict[str, tuple[str, ...]] = {
    "interfaces": columns(IF_ENTRY, IF_COLUMNS) + columns(IFX_ENTRY, IFX_COLUMNS),
    "ip": columns(IP_AD_ENTRY, IP_AD_COLUMNS) + columns(IP_ADDRESS_ENTRY, IP_ADDRESS_COLUMNS)
    + columns(IP_NET_TO_MEDIA_ENTRY, IP_NET_TO_MEDIA_COLUMNS)
    + columns(IP_NET_TO_PHYSICAL_ENTRY, IP_NET_TO_PHYSICAL_COLUMNS),
    "entity": columns(ENT_PHYSICAL_ENTRY, ENT_PHYSICAL_COLUMNS) + columns(F10_STACK_UNIT_ENTRY, F10_STACK_UNIT_COLUMNS),
    "host_resources": (HR_MEMORY_SIZE.rsplit(".", 1)[0],) + columns(HR_STORAGE_ENTRY, HR_STORAGE_COLUMNS)
    + columns(HR_DEVICE_ENTRY, HR_DEVICE_COLUMNS) + (HR_DISK_STORAGE_CAPACITY,)
    + columns(HR_FS_ENTRY, HR_FS_COLUMNS) + columns(HR_SW_INSTALLED_ENTRY, HR_SW_INSTALLED_COLUMNS)
    + columns(HR_SW_RUN_ENTRY, HR_SW_RUN_COLUMNS),
    "services": (TCP_LISTENER_PROCESS, TCP_CONN_STATE, UDP_ENDPOINT_PROCESS, UDP_LOCAL_ADDRESS),
    "lldp": (LLDP_LOC_CHASSIS_ID_SUBTYPE.rsplit(".", 1)[0], LLDP_LOC_CHASSIS_ID.rsplit(".", 1)[0],
             LLDP_LOC_SYS_NAME.rsplit(".", 1)[0]) + columns(LLDP_LOC_PORT_ENTRY, LLDP_LOC_PORT_COLUMNS)
    + columns(LLDP_REM_ENTRY, LLDP_REM_COLUMNS) + (LLDP_REM_MAN_ADDR_IF_SUBTYPE,),
    "cdp": (CDP_GLOBAL_RUN.rsplit(".", 1)[0],) + columns(CDP_CACHE_ENTRY, CDP_CACHE_COLUMNS),
    "bridge": (DOT1D_BASE_BRIDGE_ADDRESS.rsplit(".", 1)[0], DOT1D_BASE_PORT_IF_INDEX)
    + columns(DOT1D_TP_FDB_ENTRY, DOT1D_TP_FDB_COLUMNS) + columns(DOT1Q_TP_FDB_ENTRY, DOT1Q_TP_FDB_COLUMNS),
    "printer": (PRT_GENERAL_SERIAL, PRT_MARKER_LIFE_COUNT, PRT_MARKER_COUNTER_UNIT, HR_PRINTER_STATUS)
    + columns(PRT_SUPPLIES_ENTRY, PRT_SUPPLIES_COLUMNS),
}
