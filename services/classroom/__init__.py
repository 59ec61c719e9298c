"""The classroom layer: images, rooms, sessions and their occurrences, without a web layer.

Everything here takes a SQLAlchemy session and explicit times (``now`` is always a parameter,
so tests control the clock) and raises ``services.common.exceptions`` errors, which the API
turns into Ironic's error bodies. See docs/classroom-api.md and docs/architecture.md.
"""
