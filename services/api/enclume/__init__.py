"""Enclume's own API under /enclume/v1/: images, rooms, sessions, occurrences, jobs.

Ironic's conventions without microversions: JSON, Ironic's error body, paging with
``limit``/``marker``/``sort_key``/``sort_dir``/``fields`` and a ``next`` link. The logic is in
``services.classroom``; these modules only read requests and render documents.
"""
