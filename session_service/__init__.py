"""The session service of a deployed OS (docs/session-service.md): a single stdlib-only script,
``enclume_session_service.py``, installed on the tenant OS with its systemd unit. It imports
nothing of Enclume (import-linter keeps it so)."""
