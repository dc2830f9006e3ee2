"""Build dist/fleetgraph-agent_<version>_<arch>.deb from the single-file agent, with plain dpkg-deb.

    .venv/bin/python packaging/build_deb.py [--pyz dist/fleetgraph-agent.pyz] [--outdir dist]

Contents (the static files are in packaging/deb/):

    /usr/lib/fleetgraph-agent/fleetgraph-agent.pyz   the zipapp (packaging/build_pyz.py)
    /usr/bin/fleetgraph-agent                        wrapper: python3 -I the pyz, packaged config
    /etc/fleetgraph/agent.toml                       conffile, section [agent]
    /lib/systemd/system/fleetgraph-agent.service     the hardened daemon unit
    /usr/share/doc/fleetgraph-agent/, /usr/share/man/man1/fleetgraph-agent.1.gz

The zipapp bundles C extensions built for one CPython minor version and one machine, so the
package's Architecture and its python3 dependency are read from the pyz itself, never assumed.
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import tomllib
import zipfile
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from cmdb.config import AgentConfig  # noqa: E402  (the options the conffile documents)

STATIC = Path(__file__).resolve().parent / "deb"
DIST = REPO / "dist"
PACKAGE = "fleetgraph-agent"
DEFAULT_MAINTAINER = "fleetgraph maintainers <maintainers@fleetgraph.dev>"
# Debian architecture -> the machine in CPython extension file names (cpython-311-x86_64-linux-gnu).
DEB_ARCH_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
_EXTENSION = re.compile(r"\.cpython-(\d)(\d+)-([a-z0-9_]+)-linux-gnu\.so$")

# (source in packaging/deb, path in the package, mode)
FILES = (
    ("fleetgraph-agent", "usr/bin/fleetgraph-agent", 0o755),
    ("fleetgraph-agent.service", "lib/systemd/system/fleetgraph-agent.service", 0o644),
    ("copyright", f"usr/share/doc/{PACKAGE}/copyright", 0o644),
)
PYZ_PATH = f"usr/lib/{PACKAGE}/{PACKAGE}.pyz"
CONFFILES = ("/etc/fleetgraph/agent.toml",)
# Conffile values that differ from "leave the default": set explicitly, or shown as an example.
CONFFILE_SET = {"state_dir": "/var/lib/fleetgraph-agent"}
CONFFILE_EXAMPLES = {"server": "https://cmdb.example.org:8420", "token_file": "/etc/fleetgraph/agent.token"}
# Secrets stay out of a world-readable file (the header says where they go).
CONFFILE_OMITTED = ("token", "enroll_token")
MAINTAINER_SCRIPTS = ("postinst", "prerm", "postrm")

DESCRIPTION = """\
fleetgraph inventory agent (single-file build)
 Collects this machine's hardware, operating system, network and software
 inventory and reports it to a fleetgraph collector, which reconciles every
 report into a graph CMDB with full history. Runs as a hardened systemd
 service, or once from the command line.
 .
 The agent is one Python zipapp that bundles its dependencies (msgspec,
 psutil) for the system's Python 3."""


class BuildError(RuntimeError):
    """The package could not be built; the message says what to fix."""


@dataclass(frozen=True)
class PyzFacts:
    build_id: str
    python: tuple[int, int]  # the CPython minor the bundled extensions are for
    machine: str  # x86_64, aarch64

    @property
    def extraction_dir(self) -> str:
        """The directory shiv unpacks this build to, under SHIV_ROOT."""
        return f"{PACKAGE}.pyz_{self.build_id}"


def inspect_pyz(pyz: Path) -> PyzFacts:
    try:
        with zipfile.ZipFile(pyz) as zf:
            env = json.loads(zf.read("environment.json"))
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise BuildError(f"{pyz} is not a shiv zipapp ({exc}): run `make agent-pyz`") from None
    found = {(int(m[1]), int(m[2]), m[3]) for n in names if (m := _EXTENSION.search(n))}
    if len(found) != 1:
        raise BuildError(f"{pyz}: expected extensions for one CPython and machine, found {sorted(found)}")
    major, minor, machine = found.pop()
    return PyzFacts(build_id=env["build_id"], python=(major, minor), machine=machine)


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def host_arch() -> str:
    try:
        return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise BuildError("dpkg --print-architecture failed: pass --arch (amd64, arm64)") from None


def gzip_bytes(data: bytes) -> bytes:
    """gzip -9n: no name, no timestamp, so builds are reproducible."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def agent_conffile() -> str:
    """/etc/fleetgraph/agent.toml: the header, then every [agent] option with its documentation,
    generated from cmdb.config.AgentConfig so that a new option is documented in the next build."""
    lines = [(STATIC / "agent.toml.head").read_text().rstrip("\n"), "", "[agent]"]
    for f in fields(AgentConfig):
        if f.name in CONFFILE_OMITTED:
            continue
        doc = textwrap.wrap(f.metadata.get("doc", ""), 94)
        lines += [""] + [f"# {line}" for line in doc]
        if f.name in CONFFILE_SET:
            lines.append(f"{f.name} = {_toml_value(CONFFILE_SET[f.name])}")
        elif f.name in CONFFILE_EXAMPLES:
            lines.append(f"# {f.name} = {_toml_value(CONFFILE_EXAMPLES[f.name])}")
        elif f.default is not MISSING and f.default is not None:
            lines.append(f"# {f.name} = {_toml_value(f.default)}")
        else:
            lines.append(f"# {f.name} =")
    return "\n".join(lines) + "\n"


def changelog(version: str, maintainer: str, epoch: int) -> bytes:
    date = email.utils.formatdate(epoch, localtime=False)
    return (f"{PACKAGE} ({version}) unstable; urgency=medium\n\n"
            f"  * Built from the fleetgraph source tree by packaging/build_deb.py.\n\n"
            f" -- {maintainer}  {date}\n").encode()


def control(version: str, arch: str, facts: PyzFacts, maintainer: str, installed_kib: int) -> str:
    major, minor = facts.python
    fields = {
        "Package": PACKAGE,
        "Version": version,
        "Architecture": arch,
        "Maintainer": maintainer,
        "Installed-Size": str(installed_kib),
        # The bundled extensions load only in this CPython minor version.
        "Depends": f"python3 (>= {major}.{minor}), python3 (<< {major}.{minor + 1})",
        "Recommends": "iproute2, dmidecode",
        "Section": "admin",
        "Priority": "optional",
        "Description": DESCRIPTION,
    }
    return "".join(f"{k}: {v}\n" for k, v in fields.items())


def _put(root: Path, rel: str, data: bytes, mode: int) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def stage_tree(root: Path, pyz: Path, facts: PyzFacts, version: str, arch: str, maintainer: str,
               epoch: int) -> None:
    _put(root, PYZ_PATH, pyz.read_bytes(), 0o644)
    for source, dest, mode in FILES:
        _put(root, dest, (STATIC / source).read_bytes(), mode)
    _put(root, "etc/fleetgraph/agent.toml", agent_conffile().encode(), 0o644)
    _put(root, f"usr/share/man/man1/{PACKAGE}.1.gz", gzip_bytes((STATIC / f"{PACKAGE}.1").read_bytes()), 0o644)
    # A version without a Debian revision is a native package: the changelog is changelog.gz.
    name = "changelog.Debian.gz" if "-" in version else "changelog.gz"
    _put(root, f"usr/share/doc/{PACKAGE}/{name}", gzip_bytes(changelog(version, maintainer, epoch)), 0o644)

    payload = sorted(p for p in root.rglob("*") if p.is_file())
    md5sums = "".join(f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.relative_to(root)}\n"
                      for p in payload if not str(p.relative_to(root)).startswith("etc/"))
    installed_kib = sum((p.stat().st_size + 1023) // 1024 for p in payload)
    debian = root / "DEBIAN"
    _put(root, "DEBIAN/control", control(version, arch, facts, maintainer, installed_kib).encode(), 0o644)
    _put(root, "DEBIAN/conffiles", "".join(f"{c}\n" for c in CONFFILES).encode(), 0o644)
    _put(root, "DEBIAN/md5sums", md5sums.encode(), 0o644)
    for script in MAINTAINER_SCRIPTS:
        text = (STATIC / script).read_text().replace("@SHIV_DIR@", facts.extraction_dir)
        _put(root, f"DEBIAN/{script}", text.encode(), 0o755)
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (epoch, epoch), follow_symlinks=False)
    debian.chmod(0o755)


def build_deb(pyz: Path, outdir: Path, *, version: str | None = None, arch: str | None = None,
              maintainer: str | None = None) -> Path:
    if shutil.which("dpkg-deb") is None:
        raise BuildError("dpkg-deb is missing: apt-get install dpkg")
    pyz = Path(pyz).resolve()
    if not pyz.is_file():
        raise BuildError(f"{pyz} does not exist: run `make agent-pyz` first")
    facts = inspect_pyz(pyz)
    arch = arch or host_arch()
    if DEB_ARCH_MACHINES.get(arch) != facts.machine:
        raise BuildError(f"{pyz} bundles {facts.machine} extensions, which do not run on {arch}")
    version = version or project_version()
    maintainer = maintainer or os.environ.get("DEB_MAINTAINER") or DEFAULT_MAINTAINER
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or (REPO / "pyproject.toml").stat().st_mtime)
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    out = outdir / f"{PACKAGE}_{version}_{arch}.deb"
    with tempfile.TemporaryDirectory(prefix="fleetgraph-deb-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        stage_tree(root, pyz, facts, version, arch, maintainer, epoch)
        tmp_out = Path(tmp) / out.name
        proc = subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(tmp_out)],
                              capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)})
        if proc.returncode != 0:
            raise BuildError(f"dpkg-deb failed:\n{proc.stderr}")
        shutil.move(tmp_out, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pyz", type=Path, default=DIST / f"{PACKAGE}.pyz", help="the zipapp to package")
    parser.add_argument("--outdir", type=Path, default=DIST, help="where the .deb goes")
    parser.add_argument("--version", help="package version (default: pyproject.toml's)")
    parser.add_argument("--arch", help="Debian architecture (default: this machine's)")
    parser.add_argument("--maintainer", help=f"Maintainer field (default: $DEB_MAINTAINER or {DEFAULT_MAINTAINER})")
    args = parser.parse_args(argv)
    try:
        out = build_deb(args.pyz, args.outdir, version=args.version, arch=args.arch, maintainer=args.maintainer)
    except BuildError as exc:
        print(f"build_deb: {exc}", file=sys.stderr)
        return 1
    print(f"built {out}: {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
