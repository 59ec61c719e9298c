import sys

# No Enclume process runs httpx's own command line, whose module httpx imports when it can
# (``from ._main import main``) and which loads rich and pygments: about 4 MiB in each
# server process. A None entry makes that import fail, and httpx falls back to a stub.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
# Nor does any render Mako's HTML error pages, for which Mako (imported by alembic, which
# every server runs at start to upgrade the schema) loads pygments' lexers when it can:
# about 4.5 MiB of RSS. Without it Mako escapes the text instead of highlighting it.
sys.modules.setdefault("mako.ext.pygmentplugin", None)  # type: ignore[arg-type]
