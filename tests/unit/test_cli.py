"""The dispatcher: a static table of commands, and only the registrar of the command being run
imported (an agent run must not pay for the collector, the store or the HTTP client)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cmdb.cli import COMMANDS, build_parser, command_word

REPO = Path(__file__).resolve().parents[2]


def _choices(parser) -> dict:
    return parser._subparsers._group_actions[0].choices


def _helps(parser) -> dict[str, str | None]:
    return {a.dest: a.help for a in parser._subparsers._group_actions[0]._choices_actions}


def test_the_table_is_what_the_registrars_register():
    full = build_parser()
    assert list(_choices(full)) == [c.name for c in COMMANDS]
    assert _helps(full) == {c.name: c.help for c in COMMANDS}


@pytest.mark.parametrize("argv", [[], ["--help"], ["agent", "run"], ["--config", "x.toml", "ci", "list"],
                                  ["token", "list"], ["nonsense"]])
def test_every_command_is_listed_whatever_is_run(argv):
    parser = build_parser(argv)
    assert list(_choices(parser)) == [c.name for c in COMMANDS]
    assert _helps(parser) == {c.name: c.help for c in COMMANDS}


@pytest.mark.parametrize(("argv", "word"), [
    ([], None), (["-h"], None), (["agent", "run"], "agent"), (["--config", "f.toml", "agent"], "agent"),
    (["--config=f.toml", "ci"], "ci"), (["--conf", "f.toml", "token"], "token"), (["--", "demo"], "demo"),
    (["--config", "agent", "ci"], "ci"),
])
def test_command_word(argv, word):
    assert command_word(argv) == word


def test_the_named_command_is_the_real_one():
    parser = build_parser(["agent", "run", "--dry-run"])
    args = parser.parse_args(["agent", "run", "--dry-run", "--full-every", "3"])
    assert args.agent__full_every == 3 and args.func.__module__ == "agent.cli"


def _imported_by(*argv: str) -> set[str]:
    code = ("import sys\nfrom cmdb.cli import build_parser\n"
            f"build_parser({list(argv)!r}).parse_known_args({list(argv)!r})\n"
            "print('\\n'.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_an_agent_command_imports_no_server_side_module():
    modules = _imported_by("agent", "run", "--dry-run")
    assert "agent.cli" in modules
    server_side = {m for m in modules if m.split(".")[0] in ("collector", "aiohttp", "reconcile", "networkx")
                   or m.startswith(("cmdb.backends", "cmdb.store", "cmdb.cli_ci"))}
    assert server_side == set()


def test_help_imports_no_registrar():
    modules = _imported_by("--help")
    assert not {c.module for c in COMMANDS} & modules


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "cmdb.cli", "--help"], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    for command in COMMANDS:
        assert command.name in out


def test_the_agent_cli_names_the_enrollment_file_as_agent_enroll_does():
    from agent.cli import ENROLLMENT_FILE
    from agent.enroll import ENROLLMENT_FILE as written_by_enroll

    assert ENROLLMENT_FILE == written_by_enroll
