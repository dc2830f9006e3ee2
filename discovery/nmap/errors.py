"""What can go wrong with an nmap scan, one class per cause, each message saying what to do.

Every error the package raises is an `NmapError`, so a caller (the `fleetgraph scan` command)
catches one type and shows `str(exc)` to the operator.
"""

from __future__ import annotations


class NmapError(Exception):
    """Base of every error of discovery.nmap."""


class TargetError(NmapError, ValueError):
    """A target or exclusion is not an address, a CIDR, a range or a host name, or lies outside the
    allowed ranges. Raised before nmap is started."""


class NmapOptionsError(NmapError, ValueError):
    """An option is out of range, of the wrong type, not on an allow-list, or needs root."""


class NmapNotFound(NmapError):
    """No nmap executable where we looked, or the program there is not nmap (or too old)."""


class NmapTimeout(NmapError):
    """nmap did not finish in time; it was killed and nothing of the run is kept."""


class NmapFailed(NmapError):
    """nmap exited with an error status, or said in its XML that the run failed."""


class NmapCrashed(NmapFailed):
    """nmap died from a signal (killed, segfault) before finishing its output."""


class NmapXmlError(NmapError, ValueError):
    """The XML is not a complete, well-formed nmap report, or is hostile (entities, DTD fetches,
    too large). Nothing is parsed from it."""
