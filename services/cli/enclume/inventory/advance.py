"""``enroll --then manage|inspect|provide``: moving the enrolled nodes on.

``manage`` takes nodes in ``enroll`` to ``manageable``; ``inspect`` and ``provide`` first do
that, waiting for it, then inspect or provide every node in ``manageable``. Nodes in other
states (already available, deployed, failed ...) are left as they are and counted, so a re-run
never takes a node out of service. ``--wait`` waits for the last step too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import IO

from services.cli.enclume import progress
from services.cli.enclume.client import ApiClient
from services.cli.enclume.context import error_detail
from services.cli.enclume.requests import request_states
from services.cli.enclume.verbs import VERBS

GOALS = ("manage", "inspect", "provide")
STEPS = {"manage": ("manage",), "inspect": ("manage", "inspect"),
         "provide": ("manage", "provide")}
# The state each step moves nodes out of.
FROM_STATE = {"manage": "enroll", "inspect": "manageable", "provide": "manageable"}


def advance(client: ApiClient, names: Iterable[str], goal: str, *, wait: bool,
            timeout_s: float, concurrency: int, out: IO[str]) -> bool:
    """Move the nodes named towards ``goal``; False if any was refused, failed or timed out."""
    wanted = list(dict.fromkeys(names))
    states = _states(client, wanted)
    ok = True
    moved: set[str] = set()
    steps = STEPS[goal]
    for position, step in enumerate(steps):
        verb = VERBS[step]
        eligible = [name for name in wanted if states.get(name) == FROM_STATE[step]]
        if not eligible:
            continue
        accepted: list[str] = []
        for name, refusal in request_states(client, eligible, "provision",
                                            {"target": verb.target}, concurrency):
            if refusal is None:
                accepted.append(name)
            else:
                print(f"FAILED {name}: {step} refused: {error_detail(refusal)}", file=out,
                      flush=True)
                ok = False
        moved.update(accepted)
        last = position == len(steps) - 1
        if not accepted:
            continue
        if last and not wait:
            print(f"{step}: requested for {len(accepted)} node(s)", file=out, flush=True)
            continue
        print(f"{step}: waiting for {len(accepted)} node(s)", file=out, flush=True)
        outcomes = progress.wait_for(client, accepted, verb.done, verb.failed, timeout_s,
                                     out=out)
        for name, outcome in outcomes.items():
            states[name] = outcome.node.get("provision_state", states.get(name))
            ok = ok and outcome.ok
    left = Counter(str(states.get(name)) for name in wanted if name not in moved)
    if left:
        shown = ", ".join(f"{state} {count}" for state, count in sorted(left.items()))
        print(f"{goal}: {sum(left.values())} node(s) left as they are ({shown})", file=out,
              flush=True)
    return ok


def _states(client: ApiClient, names: list[str]) -> dict[str, str | None]:
    wanted = set(names)
    return {node["name"]: node.get("provision_state")
            for node in client.list_all("/v1/nodes", "nodes",
                                        params={"fields": "uuid,name,provision_state"})
            if node.get("name") in wanted}
