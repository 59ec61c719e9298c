"""``enclume-api``: the API service of a cluster. Stateless: any number of replicas serve the
same database and reach the conductors over RPC, each node's owner chosen by the hash ring."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from services.api.app import create_app
from services.api.serve import serve
from services.common.config import Settings, get_settings
from services.common.db import open_database
from services.common.membership import Membership
from services.conductor.rpc import RpcClient


def build(settings: Settings) -> FastAPI:
    db = open_database(settings)
    membership = Membership(db, settings)
    client = RpcClient(db, settings, membership)
    return create_app(settings, db, client, membership)


def main() -> None:
    sys.exit(serve(build, get_settings()))
