"""Discovery of unknown machines: what rules make of an agent's inventory, and finding the node
an inventory belongs to. The API endpoint is services/api/discovery.py, the conductor's side
services/conductor/discovery.py; the operator's guide is docs/discovery.md."""
