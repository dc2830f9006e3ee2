"""OCS Inventory / FusionInventory agents reporting to fleetgraph, unchanged (docs/legacy-agents.md).

    xml.py        safe, bounded parsing of the agents' XML requests (defusedxml, no DTDs)
    protocol.py   the wire: zlib in (capped), zlib XML replies and errors
    fields.py     typed values out of the agents' fields, in our agent's vocabulary
    sections.py   one mapper per section (HARDWARE, NETWORKS, ...) -> items like our agent's
    software.py   SOFTWARES -> Software and SoftwareInstall items, as our package collectors make them
    mapping.py    a whole inventory -> a native fleetgraph.report/1 Report (pure)
    routes.py     POST /ocsinventory: authenticate, translate, store through the native ingest path
"""
