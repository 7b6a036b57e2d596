"""always-on core: everything that is not UI (records, storage, workspaces, agents, orchestration, CLI)."""

__version__ = "0.1.0"
