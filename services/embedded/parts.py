"""`Embedded`: the parts of a running ``clickport dev`` app, shared by its composition root
(services/embedded/app.py), its health routes, the CLI and tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.adapters.disk_queue import DiskQueueTransport
from services.core import sites as site_rules
from services.core.settings import Settings
from services.core.store import Store
from services.core.store_damage import DamageWatch
from services.embedded.runtime import Runtime
from services.ingest.app import IngestStats
from services.ingest.salts import SaltBook
from services.sessionizer.supervisor import Supervisor
from services.sessionizer.worker import Sessionizer


@dataclass
class Embedded:
    """The parts of a running embedded app, for the CLI and tests."""

    settings: Settings
    store: Store
    transport: DiskQueueTransport
    known_sites: site_rules.KnownSites
    ingest_stats: IngestStats
    sessionizer: Sessionizer
    supervisor: Supervisor
    damage: DamageWatch  # broken parts of the Store's tables
    salts: SaltBook | None = None
    demo_key: str = ""
    runtime: Runtime | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Starts that found the queue behind the Store (lost writes) and began a new stream.
    queue_streams_started: int = 0
