"""fleetgraph configuration: one TOML file with a section per component.

Precedence, lowest first: the defaults below < the TOML file < environment variables
(`FLEETGRAPH_<SECTION>_<KEY>`, e.g. FLEETGRAPH_COLLECTOR_LISTEN) < command-line flags.
`fleetgraph config defaults` prints every option with its default and its documentation.
The file is found at `--config PATH`, else $FLEETGRAPH_CONFIG, else ./fleetgraph.toml, else
/etc/fleetgraph/fleetgraph.toml; none is required.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

DEFAULT_PATHS = (Path("fleetgraph.toml"), Path("/etc/fleetgraph/fleetgraph.toml"))
MiB = 1024 * 1024
# Where FlexLM/FlexNet license files usually live (vendor installs under /opt, the lmgrd defaults).
DEFAULT_LICENSE_PATHS = ("/opt/*/license*", "/usr/local/flexlm/licenses", "/etc/flexlm")
# reconcile.drift's default policy, here so that reading the config imports no reconcile code.
DEFAULT_DRIFT_TRACKED = (
    "Computer.memory_bytes", "Computer.cpu_model", "Computer.cpu_cores", "Computer.cpu_threads",
    "Computer.serial", "Computer.manufacturer", "Computer.model", "Computer.bios_version",
    "OperatingSystem.version", "OperatingSystem.version_id", "OperatingSystem.kernel_release",
    "Disk.size_bytes", "SoftwareInstall.version", "Interface.mac", "NetworkDevice.firmware",
    "Computer:Disk", "Computer:MemoryModule", "Computer:SoftwareInstall", "Computer:Service",
    "Computer:PCIDevice",
)
# reconcile.records' default response to drift no approved change explains.
DEFAULT_DRIFT_RESPONSE = ("Computer:SoftwareInstall=unauthorized_change", "*=incident")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the option and where it came from."""


def _opt(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


@dataclass(slots=True)
class CollectorConfig:
    listen: str = _opt("127.0.0.1:8420", "host:port the collector listens on")
    store: str = _opt("sqlite:var/fleetgraph.sqlite",
                      "the CMDB store: sqlite:PATH (relative to the working directory) or sqlite:///ABS/PATH")
    max_body_bytes: int = _opt(16 * MiB, "largest request body accepted on the wire (compressed), bytes")
    max_report_bytes: int = _opt(64 * MiB, "largest report accepted after gzip decompression, bytes")
    reconcile: bool = _opt(True, "run the reconcile worker in this process (false: ingest only)")
    reconcile_batch: int = _opt(32, "reports the reconcile worker takes from the log per round")
    workers: int = _opt(1, "processes serving HTTP on the one listening socket (pre-forked; set it to the "
                           "number of cores): the first also runs the reconcile worker and the webhooks")
    log_level: str = _opt("info", "debug, info, warning or error")
    tls_cert: str | None = _opt(None, "PEM certificate (chain) to serve HTTPS with, together with tls_key "
                                      "(unset: plain HTTP, for loopback only)")
    tls_key: str | None = _opt(None, "PEM private key of tls_cert (keep it owner-only)")
    log_format: str = _opt("text", "log lines: text (for people) or json (one JSON object per line, with "
                                   "request ids, for log shippers)")
    request_timeout: float = _opt(60.0, "seconds a request's body may take to arrive in full; a slower "
                                        "client gets 408 and is disconnected")
    header_timeout: float = _opt(15.0, "seconds a connection may take to send a request's headers (and an "
                                       "idle keep-alive connection stays open) before it is closed")
    rate_limit_token: float = _opt(50.0, "requests per second per API token or credential (0: no limit)")
    rate_limit_token_burst: int = _opt(500, "requests a token may make at once before rate_limit_token applies")
    rate_limit_source: float = _opt(1.0, "reports per second per report source (kind/id): per agent, per "
                                         "scanned host (0: no limit)")
    rate_limit_source_burst: int = _opt(120, "reports a source may send at once (an agent's outbox after an "
                                             "outage) before rate_limit_source applies")
    rate_limit_anonymous: float = _opt(20.0, "requests per second per client address without a valid token: "
                                             "enrollment, health, OpenAPI, wrong tokens (0: no limit)")
    rate_limit_anonymous_burst: int = _opt(200, "requests an address may make at once before "
                                                "rate_limit_anonymous applies")
    trusted_proxies: tuple[str, ...] = _opt((), "addresses or CIDRs of reverse proxies whose X-Forwarded-For "
                                                "names the real client (environment: comma-separated; flag: "
                                                "--trusted-proxy, repeated)")
    metrics_auth: str = _opt("loopback", "GET /metrics: loopback (no token from 127.0.0.0/8 or ::1, a token "
                                         "of a query role from elsewhere) or token (always a token)")
    webhooks: tuple[str, ...] = _opt((), "URLs every record event (incident opened, change approved, drift attached, "
                                         "...) is POSTed to as signed JSON, at least once, in order (environment: "
                                         "comma-separated; flag: --webhook, repeated)")
    webhook_secret_file: str | None = _opt(None, "file holding the shared secret webhooks are HMAC-SHA256 signed "
                                                 "with (owner-only; required when webhooks are set)")
    webhook_timeout: float = _opt(10.0, "seconds a webhook receiver may take to answer")
    webhook_max_attempts: int = _opt(8, "attempts per event before it is counted as a dead letter and skipped "
                                        "(backoff 1 s, 2 s, 4 s, ... up to 5 min)")
    records_interval: float = _opt(30.0, "seconds between two checks for changes whose window has closed "
                                         "(verified against their expected outcome)")


@dataclass(slots=True)
class AgentConfig:
    server: str | None = _opt(None, "collector base URL, e.g. http://127.0.0.1:8420")
    token: str | None = _opt(None, "bearer token for the collector (prefer token_file)")
    token_file: str | None = _opt(None, "file holding the bearer token (owner-only)")
    state_dir: str = _opt("/var/lib/fleetgraph-agent", "where the agent keeps its id and state")
    timeout: float = _opt(30.0, "seconds to wait for the collector")
    license_paths: tuple[str, ...] = _opt(DEFAULT_LICENSE_PATHS,
                                          "directories, files or globs searched for FlexLM license files "
                                          "(environment: comma-separated; flag: --license-path, repeated)")
    interval: float = _opt(3600.0, "`agent run` without --once: seconds between two inventories")
    splay: float | None = _opt(None, "random extra delay added to each interval, and the most the first "
                                      "run waits, seconds (default: 10% of interval)")
    full_every: int = _opt(24, "send a full report every N runs, deltas in between (1: always full)")
    outbox_max_bytes: int = _opt(50 * MiB, "largest the outbox of undelivered reports may grow, bytes; "
                                           "over it the oldest queued reports are dropped (logged)")
    retry_max: float = _opt(900.0, "longest wait between two delivery attempts while the collector "
                                   "fails (exponential backoff with jitter up to this), seconds")
    ca_file: str | None = _opt(None, "PEM CA certificate(s) to trust for the collector's HTTPS instead of "
                                     "the system CA store (pinning)")
    enroll_token: str | None = _opt(None, "one-time enrollment token for `fleetgraph agent enroll` "
                                          "(prefer FLEETGRAPH_AGENT_ENROLL_TOKEN to the command line)")


@dataclass(slots=True)
class ReconcileConfig:
    retire_after_missed_runs: int = _opt(1, "retire a CI or relation after this many complete runs of the "
                                            "collector that saw it no longer state it (1: at the next one)")
    source_priority: tuple[str, ...] = _opt(
        ("agent", "ssh", "ocs", "fusion", "snmp", "nmap"),
        "attribute precedence: source kinds, best first; the best source's value of an attribute is the "
        "current one, the newest wins between equals, a kind not listed ranks last (environment: "
        "comma-separated; flag: --source-priority agent,ssh,...)")
    attribute_priority: tuple[str, ...] = _opt(
        (), "per-attribute orders replacing source_priority, each \"ATTRIBUTE=KIND>KIND>...\" or "
            "\"Class.ATTRIBUTE=KIND>...\", e.g. [\"location=snmp>agent\"] (flag: --attribute-priority, repeated)")
    drift_tracked: tuple[str, ...] = _opt(
        DEFAULT_DRIFT_TRACKED,
        "what drift is: a change of a tracked attribute, \"Class.attribute\", or of a tracked set, "
        "\"HostClass:MemberClass\" (the member CIs hanging off the host, e.g. Computer:SoftwareInstall: "
        "packages installed and removed); changes of an existing CI only, never of a measurement "
        "(environment: comma-separated; flag: --drift-tracked, repeated, replaces the list)")
    drift_response: tuple[str, ...] = _opt(
        DEFAULT_DRIFT_RESPONSE,
        "what drift no approved change explains does, per \"SELECTOR=RESPONSE\": the selector "
        "\"Class.attribute\", \"HostClass:MemberClass\", \"Class.*\" or \"*\" (most specific wins), the response "
        "incident[:high|medium|low] (urgency), unauthorized_change or record; one open record per CI and "
        "attribute (flag: --drift-response, repeated, replaces the list)")


@dataclass(slots=True)
class ScanConfig:
    server: str | None = _opt(None, "collector base URL the scan's reports are sent to, e.g. http://127.0.0.1:8420")
    state_dir: str = _opt("/var/lib/fleetgraph-scanner", "where the scanner keeps its id, its enrolled credential "
                                                         "and the SSH known_hosts it manages")
    ca_file: str | None = _opt(None, "PEM CA certificate(s) to trust for the collector's HTTPS")
    credentials_file: str | None = _opt(None, "TOML file of [[snmp]] and [[ssh]] credential sets, tried in order "
                                              "(must be owner-only: mode 0600 or stricter)")
    targets: tuple[str, ...] = _opt((), "what to scan: addresses, CIDR blocks, ranges (127.0.0.10-20) "
                                        "(flag: --targets, comma-separated or repeated)")
    exclude: tuple[str, ...] = _opt((), "addresses, blocks or ranges never scanned")
    allowed: tuple[str, ...] = _opt((), "if set, every target must lie inside these blocks (a guard rail: a "
                                        "typo cannot scan someone else's network)")
    protocols: tuple[str, ...] = _opt(("nmap", "snmp", "ssh"), "scanners to run: nmap, snmp, ssh")
    ports: str = _opt("22,80,161,443,2222,8080,16161", "TCP ports nmap checks (SSH is tried where its port is "
                                                       "open)")
    service_version: bool = _opt(True, "nmap -sV: identify the service and version behind each open port")
    snmp_port: int = _opt(161, "UDP port of the SNMP agents")
    ssh_port: int = _opt(22, "TCP port of the SSH servers")
    trust_on_first_use: bool = _opt(False, "record an unknown SSH host key in the managed known_hosts instead of "
                                           "refusing the host (logged); off: unknown keys are refused")
    concurrency: int = _opt(32, "hosts scanned at the same time")
    timeout: float = _opt(5.0, "seconds a host may take to answer one protocol before it counts as failed")
    retries: int = _opt(1, "SNMP retransmissions after a timeout")
    interval: float | None = _opt(None, "`fleetgraph scan --service`: seconds between two scans of the profile")
    enroll_token: str | None = _opt(None, "one-time enrollment token: the scan enrolls the scanner first and keeps "
                                          "its credential in state_dir (prefer FLEETGRAPH_SCAN_ENROLL_TOKEN to the "
                                          "command line)")
    profiles: tuple[str, ...] = _opt((), "named scan profiles, each \"NAME: key=value; key=value\" over the "
                                         "options above, e.g. \"lab: targets=127.0.0.11-30; protocols=snmp,ssh; "
                                         "interval=3600\" (flag: --profile NAME picks one)")


@dataclass(slots=True)
class Config:
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)
    scan: ScanConfig = field(default_factory=ScanConfig)
    source: str | None = None  # the file it was read from, if any


SECTIONS: dict[str, type] = {"collector": CollectorConfig, "agent": AgentConfig, "reconcile": ReconcileConfig,
                             "scan": ScanConfig}


def _coerce(value: Any, fld: dataclasses.Field, where: str) -> Any:
    kind = fld.type if isinstance(fld.type, str) else getattr(fld.type, "__name__", str(fld.type))
    base = kind.replace(" | None", "").strip()
    if value is None or (isinstance(value, str) and value == "" and "None" in kind):
        if "None" in kind:
            return None
        raise ConfigError(f"{where}: a value is required")
    try:
        if base == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if base == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
        if base.startswith(("tuple[str", "list[str")):
            if isinstance(value, str):  # from the environment: comma-separated
                value = [v.strip() for v in value.split(",")]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return tuple(v for v in value if v)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected {base}, got {value!r}") from None
    return value


def _apply(section_obj: Any, values: Mapping[str, Any], where: str) -> None:
    fields = {f.name: f for f in dataclasses.fields(section_obj)}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}.{key}: unknown option (known: {', '.join(fields)})")
        setattr(section_obj, key, _coerce(value, fields[key], f"{where}.{key}"))


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    if explicit:
        return Path(explicit)
    if env.get("FLEETGRAPH_CONFIG"):
        return Path(env["FLEETGRAPH_CONFIG"])
    return next((p for p in DEFAULT_PATHS if p.is_file()), None)


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Config:
    """Defaults < file < environment < overrides ({section: {key: value}}, None values skipped)."""
    env = os.environ if env is None else env
    cfg = Config()
    file = find_config_file(str(path) if path else None, env)
    if file is not None:
        import tomllib  # only when there is a file: most agent runs have none

        try:
            data = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"config file {file} cannot be read: {exc.strerror}") from None
        for section, values in data.items():
            if section not in SECTIONS:
                raise ConfigError(f"{file}: unknown section [{section}] (known: {', '.join(SECTIONS)})")
            if not isinstance(values, dict):
                raise ConfigError(f"{file}: [{section}] must be a table")
            _apply(getattr(cfg, section), values, f"{file}: {section}")
        cfg.source = str(file)
    for section in SECTIONS:
        prefix = f"FLEETGRAPH_{section.upper()}_"
        values = {k[len(prefix):].lower(): v for k, v in env.items() if k.startswith(prefix)}
        if values:
            _apply(getattr(cfg, section), values, f"environment {prefix}*")
    for section, values in (overrides or {}).items():
        given = {k: v for k, v in values.items() if v is not None}
        _apply(getattr(cfg, section), given, f"--{section} flags")
    return cfg


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"collector.listen: expected host:port, got {listen!r}")
    return host.strip("[]"), int(port)


def render_defaults() -> str:
    """Every option with its default and documentation, as a commented TOML file."""
    import json

    lines = [f"# {line}" if line else "#" for line in (__doc__ or "").strip().splitlines()]
    for section, cls in SECTIONS.items():
        lines += ["", f"[{section}]"]
        for f in dataclasses.fields(cls):
            default = f.default
            lines.append(f"# {f.metadata['doc']}")
            if default is None:
                lines.append(f"# {f.name} =")
            elif isinstance(default, str):
                lines.append(f'{f.name} = "{default}"')
            elif isinstance(default, (tuple, list)):  # a JSON array of strings is a TOML array
                lines.append(f"{f.name} = {json.dumps(list(default))}")
            else:
                lines.append(f"{f.name} = {default!r}".replace("True", "true").replace("False", "false"))
    return "\n".join(lines) + "\n"
