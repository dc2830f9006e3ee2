"""Network devices over SSH: platform detection and commands (platforms), one pure parser module
per platform, the device report (report). See docs/discovery-ssh.md."""
