from __future__ import annotations

import tomllib

import pytest

from cmdb.config import ConfigError, load_config, parse_listen, render_defaults


def test_defaults_render_as_valid_toml_equal_to_defaults(tmp_path):
    path = tmp_path / "fleetgraph.toml"
    path.write_text(render_defaults())
    assert tomllib.loads(path.read_text())["collector"]["listen"] == "127.0.0.1:8420"
    assert load_config(path, env={}) .collector == load_config(env={"FLEETGRAPH_CONFIG": ""}).collector


def test_precedence_defaults_file_env_flags(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[collector]\nlisten = "127.0.0.1:1000"\nreconcile_batch = 5\n[agent]\ntimeout = 3\n')
    cfg = load_config(path, env={})
    assert (cfg.collector.listen, cfg.collector.reconcile_batch, cfg.agent.timeout) == ("127.0.0.1:1000", 5, 3.0)
    cfg = load_config(path, env={"FLEETGRAPH_COLLECTOR_LISTEN": "127.0.0.1:2000"})
    assert cfg.collector.listen == "127.0.0.1:2000"
    cfg = load_config(path, env={"FLEETGRAPH_COLLECTOR_LISTEN": "127.0.0.1:2000"},
                      overrides={"collector": {"listen": "127.0.0.1:3000", "store": None}})
    assert cfg.collector.listen == "127.0.0.1:3000"
    assert cfg.collector.store == "sqlite:var/fleetgraph.sqlite"
    assert load_config(env={"FLEETGRAPH_COLLECTOR_RECONCILE": "false"}).collector.reconcile is False


@pytest.mark.parametrize("text,words", [
    ("[collector]\nlisten = 5\n", "collector.listen: expected str"),
    ("[collector]\nlistne = 'x'\n", "unknown option"),
    ("[printer]\nx = 1\n", "unknown section [printer]"),
    ("[collector\n", "not valid TOML"),
    ("collector = 3\n", "must be a table"),
    ("[collector]\nreconcile_batch = true\n", "expected int"),
])
def test_bad_config_file_names_the_option(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=None) as err:
        load_config(path, env={})
    assert words in str(err.value)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError, match="FLEETGRAPH_AGENT_.*timeout: expected float"):
        load_config(env={"FLEETGRAPH_AGENT_TIMEOUT": "soon"})


@pytest.mark.parametrize("listen", ["8420", ":8420", "host:", "host:99999", "host:port"])
def test_bad_listen(listen):
    with pytest.raises(ConfigError):
        parse_listen(listen)


def test_listen_parses_ipv6():
    assert parse_listen("[::1]:8420") == ("::1", 8420)


def test_configuration_doc_lists_every_default():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    assert render_defaults() in doc, "docs/configuration.md is stale: regenerate it from `fleetgraph config defaults`"


def test_every_option_has_a_flag():
    """Each config option can be set on the command line (flag dests are `<section>__<key>`)."""
    import dataclasses

    from cmdb.cli import build_parser
    from cmdb.config import SECTIONS

    dests: set[str] = set()

    def walk(parser):
        for action in parser._actions:
            dests.add(action.dest)
            for sub in (getattr(action, "choices", None) or {}).values() if hasattr(action, "_name_parser_map") else ():
                walk(sub)

    walk(build_parser())
    secret = {"agent__token"}  # a secret never goes on a command line (ps shows it): env or token_file
    missing = {f"{section}__{f.name}" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    assert missing - dests - secret == set()
