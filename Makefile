# fleetgraph — the two commands: `make demo` and `make test`. Both do all set-up on a fresh
# Debian 12 machine (system packages, virtualenv, pip install) and are safe to re-run.

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
# System packages the code, the tests and the benchmarks use (time: peak RSS in bench/).
# Installed only when one is missing.
SYSTEM_PACKAGES := python3-venv iproute2 procps gzip time fusioninventory-agent ocsinventory-agent \
                   snmpd snmp openssh-server openssh-client nmap
PYTEST_ARGS ?=

.PHONY: demo test test-fast sysdeps venv schema bench bench-agent bench-load bench-reconcile bench-discovery clean agent-pyz deb

sysdeps: .stamp-sysdeps
.stamp-sysdeps: Makefile
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null | grep -q '^ii' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	@touch $@

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml | .stamp-sysdeps
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	@touch $@

demo: venv
	$(VENV)/bin/fleetgraph demo

test: venv
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv
	$(PY) -m pytest -m 'not slow' $(PYTEST_ARGS)

schema: venv
	$(PY) -m cmdb.jsonschema

bench: venv
	$(PY) bench/ingest.py

# Our agent beside FusionInventory agent on this machine (issue 3): wall, peak RSS, parity.
bench-agent: venv
	$(PY) bench/agent_vs_fusion.py

# 1,000 simulated agents beside a bare orjson handler (issue 6).
bench-load: venv
	$(PY) bench/load.py

bench-reconcile: venv
	$(PY) bench/reconcile.py --repeat 5

# Scanners beside their peers (issue 4): snmpbulkwalk, raw nmap, the local agent run.
bench-discovery: venv
	$(PY) bench/snmp_walk.py
	$(PY) bench/nmap_wrapper.py
	$(PY) bench/ssh_scan.py

# The single-file agent and its Debian package (docs/packaging.md).
agent-pyz: venv
	$(PY) packaging/build_pyz.py --output dist/fleetgraph-agent.pyz

deb: agent-pyz
	$(PY) packaging/build_deb.py --pyz dist/fleetgraph-agent.pyz --outdir dist

clean:
	rm -rf $(VENV) .stamp-sysdeps var build dist *.egg-info .pytest_cache
