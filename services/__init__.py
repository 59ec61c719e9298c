import sys

# No Enclume process runs httpx's own command line, whose module httpx imports when it can
# (``from ._main import main``) and which loads rich and pygments: about 4 MiB in each
# server process. A None entry makes that import fail, and httpx falls back to a stub.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
