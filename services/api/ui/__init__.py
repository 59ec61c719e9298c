"""The teacher web page under /ui/: server-rendered Jinja2 pages, htmx and its SSE extension,
Pico's classless CSS (vendored in static/vendor, see VENDOR.md there).

A layer on top of the classroom logic (``services.classroom``), beside the JSON API of
``services.api.enclume``: it calls the same functions in-process and never imports a driver or
the conductor (pyproject.toml's import contracts). Logins are signed session cookies
(``login.py``); every POST form carries a CSRF token.
"""
