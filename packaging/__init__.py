"""Deb, systemd units and single-file agent build: no application logic."""
