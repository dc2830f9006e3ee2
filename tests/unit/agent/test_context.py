"""LocalContext's file reads: whole files in one sized read, /proc files to their end, a bound."""

from __future__ import annotations

import os

import pytest

from agent import context as context_module
from agent.context import LocalContext, read_bounded

AGENT_ID = "6f1c2d3e-0000-4000-8000-000000000002"


def test_regular_files_proc_files_and_missing_ones(tmp_path):
    ctx = LocalContext(agent_id=AGENT_ID)
    (tmp_path / "small").write_bytes(b"hello\n")
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "latin").write_bytes("caf\u00e9 \u0142".encode() + b"\xff")
    assert ctx.read_file(str(tmp_path / "small")) == "hello\n"
    assert ctx.read_file(str(tmp_path / "empty")) == ""
    assert ctx.read_file(str(tmp_path / "latin")) == "caf\u00e9 \u0142\ufffd"
    assert ctx.read_file(str(tmp_path / "absent")) is None
    assert ctx.read_file(str(tmp_path)) is None  # a folder
    # /proc says its files are empty: they are read to their end all the same
    status = ctx.read_file("/proc/self/status")
    assert status is not None and "Pid:" in status and len(status) > 100


def test_a_file_larger_than_the_bound_is_cut(tmp_path, monkeypatch):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 100_000)
    with open(path, "rb", buffering=0) as fh:
        assert read_bounded(fh, 1000) == b"x" * 1000
    monkeypatch.setattr(context_module, "MAX_FILE_BYTES", 4096)
    assert LocalContext(agent_id=AGENT_ID).read_file(str(path)) == "x" * 4096
    with open("/proc/self/maps", "rb", buffering=0) as fh:
        assert len(read_bounded(fh, 10)) == 10


def test_a_short_read_is_completed(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abcdef" * 1000)

    class Dribbling:  # a file that hands out at most 7 bytes per read
        def __init__(self, fh):
            self.fh = fh

        def fileno(self):
            return self.fh.fileno()

        def read(self, n):
            return self.fh.read(min(n, 7))

    with open(path, "rb", buffering=0) as fh:
        assert read_bounded(Dribbling(fh), 10**6) == b"abcdef" * 1000


def test_sysroot_paths_and_signatures(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hostname").write_text("box\n")
    ctx = LocalContext(agent_id=AGENT_ID, sysroot=tmp_path)
    assert not ctx.local
    assert ctx.path("/etc/hostname") == tmp_path / "etc" / "hostname"
    assert ctx.read_file("/etc/hostname") == "box\n"
    assert ctx.list_dir("/etc") == ["hostname"]
    with pytest.raises(ValueError, match="absolute"):
        ctx.path("etc/hostname")
    assert ctx.read_file("etc/hostname") is None
    st = os.stat(tmp_path / "etc" / "hostname")
    assert ctx.file_signature("/etc/hostname") == [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    assert ctx.file_signature("/etc/absent") is None
    assert ctx.file_signature("/etc/hostname/under-a-file") is None


def test_read_bytes_is_read_file_undecoded(tmp_path):
    ctx = LocalContext(agent_id=AGENT_ID)
    (tmp_path / "latin").write_bytes("caf\u00e9".encode() + b"\xff")
    assert ctx.read_bytes(str(tmp_path / "latin")) == "caf\u00e9".encode() + b"\xff"
    assert ctx.read_bytes(str(tmp_path / "latin"), 3) == b"caf"
    assert ctx.read_bytes(str(tmp_path / "absent")) is None


def test_a_started_command_gives_what_run_gives():
    ctx = LocalContext(agent_id=AGENT_ID)
    big = ["seq", "1", "100000"]  # ~590 KB: more than a pipe holds, while nobody reads
    started = ctx.start(big)
    assert started.output() == ctx.run(big)
    started.cancel()  # ended and closed already: nothing to do
    with pytest.raises(context_module.CommandFailed) as failed:
        ctx.start(["ls", "/nonexistent-fleetgraph"]).output()
    assert failed.value.returncode != 0 and "nonexistent" in failed.value.stderr
    with pytest.raises(context_module.CommandNotFound):
        ctx.start(["no-such-command-fleetgraph"]).output()
    with pytest.raises(context_module.CommandTimeout):
        ctx.start(["sleep", "5"], timeout=0.2).output()
    running = ctx.start(["sleep", "5"])
    running.cancel()  # killed and reaped, not waited for


def test_a_foreign_sysroot_starts_nothing(tmp_path):
    with pytest.raises(context_module.CommandNotFound):
        LocalContext(agent_id=AGENT_ID, sysroot=tmp_path).start(["true"]).output()
