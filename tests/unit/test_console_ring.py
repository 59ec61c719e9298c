"""Consoles follow the hash ring (console_ops.follow_the_ring, #22), with the fake console and
a second conductor that exists only as a row: the enabled consoles of this conductor's nodes
are opened, one whose node the ring gives the other conductor is released with where it went,
one whose node was deleted is closed with that reason."""

from __future__ import annotations

from sqlalchemy import delete, update

from services.common.db import Database
from services.common.models import Conductor, Node
from services.conductor.consoles import Closed
from services.conductor.manager import ConductorManager
from tests.support.polling import eventually
from tests.support.ring_owned import uuids_owned_by

# The periodic tasks' fixtures: this conductor (ME) started, OTHER a live row in the ring.
from tests.unit.test_periodic import ME, OTHER, db, manager  # noqa: F401


def set_other_online(db: Database, manager: ConductorManager,  # noqa: F811
                     online: bool) -> None:
    with db.session() as session:
        session.execute(update(Conductor).where(Conductor.hostname == OTHER)
                        .values(online=online))
    manager.membership.refresh_now()


def listen(manager: ConductorManager, uuid: str) -> list[bytes | Closed]:  # noqa: F811
    """What the node's open console delivers to a client from now on."""
    info = manager.consoles.info(uuid)
    assert info is not None
    session = manager.consoles.session(uuid, info["url"].split("token=")[1])
    assert session is not None
    received: list[bytes | Closed] = []
    assert session.attach(received.append)
    return received


def test_consoles_follow_the_ring(db: Database,  # noqa: F811
                                  manager: ConductorManager) -> None:  # noqa: F811
    mine = next(uuids_owned_by(ME, [ME, OTHER], "mine"))
    theirs = next(uuids_owned_by(OTHER, [ME, OTHER], "theirs"))
    with db.session() as session:
        session.add_all([Node(uuid=uuid, driver="fake-hardware", console_interface="fake",
                              console_enabled=True) for uuid in (mine, theirs)])

    manager.follow_the_ring()
    eventually(lambda: manager.consoles.open_nodes() == {mine}, 10, "mine opened")

    set_other_online(db, manager, False)  # the other conductor died: both nodes are mine
    manager.follow_the_ring()
    eventually(lambda: manager.consoles.open_nodes() == {mine, theirs}, 10, "theirs opened")
    to_theirs, to_mine = listen(manager, theirs), listen(manager, mine)

    set_other_online(db, manager, True)  # it is back: its node's console goes to it
    assert manager.follow_the_ring() == (1, 0)
    assert manager.consoles.open_nodes() == {mine}
    assert to_theirs[-1] == Closed(f"the node's console moved to conductor {OTHER}")

    with db.session() as session:  # deleted elsewhere (by a new owner, mid-move)
        session.execute(delete(Node).where(Node.uuid == mine))
    assert manager.follow_the_ring() == (1, 0)
    assert manager.consoles.open_nodes() == set()
    assert to_mine[-1] == Closed("the node was deleted")
