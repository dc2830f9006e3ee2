"""Pure parsers of raw file and command text, shared by the agent and the SSH scanner."""
