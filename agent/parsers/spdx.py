"""Debian machine-readable copyright files (DEP-5) to one SPDX license expression per package.

    declared_license(data) -> "GPL-2.0-or-later AND (Artistic-1.0-Perl OR GPL-1.0-or-later)" | None

Only what the file declares, never a guess: a file that is not in the machine-readable format has
no license here (None). The expression combines the distinct licenses of every `Files:` paragraph
with AND, the `Files: *` paragraph's first; `or` alternatives stay OR.

Debian short names map to SPDX ids by the copyright-format rules: "+" is "or later", an omitted
version is the lowest version of the family (so "GPL" is GPL-1.0-only), `Expat` is MIT. A name
with no SPDX id becomes `LicenseRef-<name>`; "<name> with <X> exception" becomes
`<id> WITH <exception id>`, or `WITH AdditionRef-<X>-exception` (SPDX 3) for an exception SPDX
does not list.

Speed matters (a Debian host has ~900 of these, 17 MB, four 2 MB Boost files among them): the file
is scanned as bytes, never decoded whole; one compiled regex finds the `Files:`/`License:` lines
and only those (and the header) are decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# The header paragraph's Format (or, in early drafts, Format-Specification) names the format.
_FORMAT_MARKERS = ("copyright-format", "dep5", "dep-5")
_HEADER_SCAN = 4096

# Lower-case spelling -> SPDX id, for names that are SPDX ids already (the common ones) ...
_SPDX_IDS = {i.lower(): i for i in (
    "0BSD", "AFL-2.0", "AFL-2.1", "AFL-3.0", "Apache-1.0", "Apache-1.1", "Apache-2.0", "APSL-2.0",
    "Artistic-1.0", "Artistic-1.0-Perl", "Artistic-2.0", "Beerware", "blessing", "BSD-1-Clause",
    "BSD-2-Clause", "BSD-3-Clause", "BSD-4-Clause", "BSD-4-Clause-UC", "BSD-Source-Code", "BSL-1.0",
    "bzip2-1.0.6", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "CC0-1.0", "CDDL-1.0",
    "CDDL-1.1", "CECILL-2.1", "curl", "ECL-2.0", "EPL-1.0", "EPL-2.0", "EUPL-1.2", "FSFAP", "FSFUL",
    "FSFULLR", "FTL", "GD", "HPND", "ICU", "IJG", "Info-ZIP", "ISC", "JSON", "LPPL-1.3c", "Libpng",
    "libpng-2.0", "MirOS", "MIT", "MIT-0", "MPL-1.0", "MPL-1.1", "MPL-2.0", "MS-PL", "NCSA", "NTP",
    "OFL-1.1", "OLDAP-2.8", "OpenSSL", "PHP-3.01", "PostgreSQL", "PSF-2.0", "Python-2.0", "Ruby",
    "Sendmail", "SGI-B-2.0", "Sleepycat", "Spencer-86", "Spencer-94", "Spencer-99", "TCL",
    "Unicode-3.0", "Unicode-DFS-2016", "Unlicense", "UPL-1.0", "Vim", "W3C", "WTFPL", "X11", "Zlib",
    "ZPL-2.1",
)}
# ... and Debian's names for licenses that SPDX spells differently.
_DEBIAN_ALIASES = {
    "expat": "MIT", "mit/x11": "MIT", "mit-x11": "MIT",
    "public-domain": "LicenseRef-public-domain", "public_domain": "LicenseRef-public-domain",
    "publicdomain": "LicenseRef-public-domain", "pd": "LicenseRef-public-domain",
    "artistic": "Artistic-1.0-Perl",  # Debian's common-licenses/Artistic is Perl's
    "apache": "Apache-1.0", "mpl": "MPL-1.0", "cc0": "CC0-1.0", "zope-2.1": "ZPL-2.1",
    "psf-2": "PSF-2.0", "openldap-2.8": "OLDAP-2.8", "boost-1.0": "BSL-1.0",
}
# Names that stand for an expression: Debian's "Perl" is "the same terms as Perl itself".
_EXPANSIONS = {"perl": "Artistic or GPL-1+"}

# GNU families: GPL-2, GPL-2+, GPLv3+, GPL-2.0+, LGPL-2.1, GFDL-NIV-1.3+, GPL-3.0-or-later, ...
_GNU = re.compile(r"^(agpl|lgpl|gpl|gfdl-niv|gfdl)[-_ ]?v?(\d+(?:\.\d+)?)?(\+|-or-later|-only)?$")
_GNU_VERSIONS = {  # family -> {written version: SPDX version}; the first is the lowest
    "gpl": {"1": "1.0", "1.0": "1.0", "2": "2.0", "2.0": "2.0", "3": "3.0", "3.0": "3.0"},
    "lgpl": {"2": "2.0", "2.0": "2.0", "2.1": "2.1", "3": "3.0", "3.0": "3.0"},
    "agpl": {"1": "1.0", "1.0": "1.0", "3": "3.0", "3.0": "3.0"},
    "gfdl": {"1.1": "1.1", "1.2": "1.2", "1.3": "1.3"},
    "gfdl-niv": {"1.1": "1.1", "1.2": "1.2", "1.3": "1.3"},
}
_BSD = re.compile(r"^bsd-([1-4])-clause$")
_WITH = re.compile(r"^(\S+)\s+with\s+(.+?)(?:\s+exceptions?)?$", re.I)
_EXCEPTIONS = {  # Debian's words for an exception -> SPDX exception id
    "autoconf": "Autoconf-exception-generic", "autoconf-3": "Autoconf-exception-3.0",
    "bison": "Bison-exception-2.2", "linux-syscall-note": "Linux-syscall-note",
    "gcc runtime library": "GCC-exception-3.1", "gcc-runtime-library": "GCC-exception-3.1",
    "classpath": "Classpath-exception-2.0", "font": "Font-exception-2.0",
    "libtool": "Libtool-exception", "llvm": "LLVM-exception", "openssl": "AdditionRef-OpenSSL-exception",
}
_OPERATOR = re.compile(r"\s+(or|and)\s+|_(or|and)_", re.I)
_COMMA_OPERATOR = re.compile(r"\s*,\s+(or|and)\s+", re.I)
_IDSTRING_JUNK = re.compile(r"[^A-Za-z0-9.]+")
UNKNOWN = "LicenseRef-unknown"


def _idstring(name: str) -> str:
    """An SPDX idstring ([A-Za-z0-9.-]) made from a free name; '+' reads "plus"."""
    return _IDSTRING_JUNK.sub("-", name.replace("+", "-plus")).strip("-") or "unknown"


def _gnu_id(match: re.Match) -> str | None:
    family, version, suffix = match.groups()
    versions = _GNU_VERSIONS[family]
    spdx_version = versions.get(version) if version else next(iter(versions.values()))
    if spdx_version is None:
        return None
    later = "-or-later" if suffix in ("+", "-or-later") else "-only"
    if family == "gfdl-niv":
        return f"GFDL-{spdx_version}-no-invariants{later}"
    return f"{family.upper()}-{spdx_version}{later}"


def spdx_id(name: str) -> str:
    """The SPDX id of one Debian short license name; `LicenseRef-<name>` when SPDX has none."""
    raw = name.strip().strip(",;")
    key = raw.lower()
    if not raw:
        return UNKNOWN
    if key in _DEBIAN_ALIASES:
        return _DEBIAN_ALIASES[key]
    if key in _SPDX_IDS:
        return _SPDX_IDS[key]
    if (m := _GNU.match(key)) and (gnu := _gnu_id(m)):
        return gnu
    if m := _BSD.match(key):
        return f"BSD-{m[1]}-Clause"
    if f"{key}.0" in _SPDX_IDS:  # "Apache-2", "MPL-2": the version without its ".0"
        return _SPDX_IDS[f"{key}.0"]
    if any(c.isspace() for c in raw):
        return UNKNOWN  # prose where a name belongs: declared, but not as a name we can read
    return f"LicenseRef-{_idstring(raw)}"


# -- expressions: a small tree, so "Perl and MIT" becomes "(Artistic... OR GPL...) AND MIT" ---------

@dataclass(frozen=True, slots=True)
class Expr:
    op: str  # "or", "and" or "id"
    args: tuple[Expr, ...] = ()
    name: str = ""

    def render(self, parent: str | None = None) -> str:
        if self.op == "id":
            return self.name
        text = f" {self.op.upper()} ".join(a.render(self.op) for a in self.args)
        return f"({text})" if parent is not None and parent != self.op else text


def _join(op: str, parts: list[Expr]) -> Expr:
    """An n-ary node with nested nodes of the same operator flattened and duplicates dropped."""
    flat: list[Expr] = []
    for part in parts:
        for arg in (part.args if part.op == op else (part,)):
            if arg not in flat:
                flat.append(arg)
    return flat[0] if len(flat) == 1 else Expr(op, tuple(flat))


def _term(text: str, depth: int = 0) -> Expr:
    if m := _WITH.match(text.strip()):
        base, exception = spdx_id(m[1]), m[2].strip()
        exception_id = _EXCEPTIONS.get(exception.lower()) or f"AdditionRef-{_idstring(exception)}-exception"
        return Expr("id", name=f"{base} WITH {exception_id}")
    expansion = _EXPANSIONS.get(text.strip().lower())
    if expansion and depth == 0:
        return parse_license_expression(expansion, depth + 1)
    return Expr("id", name=spdx_id(text))


@lru_cache(maxsize=4096)
def parse_license_expression(text: str, depth: int = 0) -> Expr:
    """The first line of a DEP-5 `License:` field ("GPL-2+ or Artistic", "LGPL-2.1+ and BSD-3-clause",
    "GPL-2+ with Autoconf exception") as an expression. As in the format (and SPDX), `and` binds
    tighter than `or`; a comma before the operator ("A or B, and C") binds loosest, left to right."""
    segments = _COMMA_OPERATOR.split(text.strip())
    expression = _parse_segment(segments[0], depth)
    for op, segment in zip(segments[1::2], segments[2::2]):
        expression = _join(op.lower(), [expression, _parse_segment(segment, depth)])
    return expression


def _parse_segment(text: str, depth: int) -> Expr:
    parts = _OPERATOR.split(text.strip())
    # re.split with two groups yields [term, op1, op2, term, ...]: fold them into or-of-ands.
    terms, ops = parts[0::3], [(a or b).lower() for a, b in zip(parts[1::3], parts[2::3])]
    alternatives: list[list[Expr]] = [[_term(terms[0], depth)]]
    for op, term in zip(ops, terms[1:]):
        if op == "or":
            alternatives.append([])
        alternatives[-1].append(_term(term, depth))
    return _join("or", [_join("and", conjuncts) for conjuncts in alternatives])


# -- the file ------------------------------------------------------------------------------------

def is_machine_readable(text: str) -> bool:
    """True when the header paragraph names the machine-readable copyright format."""
    end = text.find("\n\n", 0, _HEADER_SCAN)
    header = text[: end if end != -1 else _HEADER_SCAN].lower()
    for line in header.splitlines():
        field, sep, value = line.partition(":")
        if sep and field.strip() in ("format", "format-specification"):
            return any(marker in value for marker in _FORMAT_MARKERS)
    return False


# A `Files:` paragraph: its Files line, the lines up to its first `License:` line (a paragraph's
# lines are never empty: a blank line ends it), that License line, and the rest of the paragraph,
# consumed so that the next search starts after it (a second `Files:` line inside a paragraph
# opens nothing). The regex engine skips the license texts between these paragraphs at the speed
# of a substring search: no decoding, no Python step per line.
_FILES_PARAGRAPH = re.compile(rb"\nFiles:([^\n]*)(?:\n[^\n]+)*?\nLicense:([^\n]*)(?:\n[^\n]+)*+")


def _line_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").strip()


def files_paragraph_licenses(data: bytes) -> list[tuple[bool, str]]:
    """(covers "*", first line of License) for each `Files:` paragraph, in file order."""
    out: list[tuple[bool, str]] = []
    lines: dict[bytes, str] = {}  # a 2 MB Boost file has 1,500 paragraphs and one License line
    for files, lic in _FILES_PARAGRAPH.findall(data):
        line = lines.get(lic)
        if line is None:
            line = lines[lic] = _line_text(lic)
        out.append((b"*" in files and "*" in _line_text(files).split(), line))
    return out


# The first _HEADER_SCAN characters are in these bytes, whatever their UTF-8 length (1-4 bytes).
_HEAD_BYTES = 4 * _HEADER_SCAN + 4


def _head(data: bytes) -> str:
    """The header paragraph, or the first _HEADER_SCAN characters when it is longer (what
    is_machine_readable reads), decoded; the rest of the file is not."""
    end = data.find(b"\n\n", 0, _HEADER_SCAN)  # within _HEADER_SCAN bytes: within as many characters
    if end != -1:
        return data[:end].decode("utf-8", "replace")
    return data[:_HEAD_BYTES].decode("utf-8", "replace")[:_HEADER_SCAN]


def declared_license(data: bytes | str) -> str | None:
    """The SPDX expression a DEP-5 copyright file (its bytes, UTF-8) declares, or None when the
    file is not machine-readable or declares nothing we can read. Only the header and the field
    lines found are decoded."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if b"\r" in data[:_HEADER_SCAN] or (
            b"\r" in data[:_HEAD_BYTES] and "\r" in data[:_HEAD_BYTES].decode("utf-8", "replace")[:_HEADER_SCAN]):
        data = data.replace(b"\r\n", b"\n")  # a file is CRLF throughout or not at all
    if not is_machine_readable(_head(data)):
        return None
    paragraphs = files_paragraph_licenses(data)
    if not paragraphs:
        header_end = data.find(b"\n\n")
        lic = data.find(b"\nLicense:", 0, header_end if header_end != -1 else len(data))
        if lic == -1:
            return None
        line_end = data.find(b"\n", lic + 1)
        paragraphs = [(True, _line_text(data[lic + len(b"\nLicense:"): line_end if line_end != -1 else len(data)]))]
    ordered = [lic for star, lic in paragraphs if star] + [lic for star, lic in paragraphs if not star]
    parsed: dict[str, Expr] = {}
    for line in ordered:  # a 2 MB Boost file says "BSL-1.0" 1,500 times: parse each line once
        if line not in parsed:
            parsed[line] = parse_license_expression(line) if line else Expr("id", name=UNKNOWN)
    expression = _join("and", [parsed[line] for line in dict.fromkeys(ordered)])
    return expression.render()
