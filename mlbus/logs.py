"""`mlbus logs rebuild`: drop the log read models and fold every raw log again with the logger's
own code (`services/logger/rebuild.py`), in the database the logger's settings name
(`MLBUS_LOGGER_…`, then `MLBUS_…`). The logger must be stopped meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from runtime.mongo import database, open_mongo, server_is_ferretdb
from services.logger.errors import StoreUnavailable
from services.logger.rebuild import rebuild
from services.logger.settings import LoggerSettings
from services.logger.store import ViewStore


async def _run(settings: LoggerSettings, batch: int, say: Callable[[str], None]) -> int:
    client = open_mongo(settings)
    try:
        db = database(client, settings)
        # MongoDB: pages read the views by their indexes, and there is no hand-made index
        ferretdb = await server_is_ferretdb(db)
        store = ViewStore(db, settings.write_concurrency, buckets=ferretdb)
        say(f"rebuilding the log read models of database {settings.mongo_db!r}")
        done = await rebuild(
            store, batch=batch, progress=lambda n, total: say(f"  {n:,} / {total:,} raw logs")
        )
        if not ferretdb:
            await store.create_view_indexes()
    except StoreUnavailable as exc:
        say(f"mlbus: MongoDB failed: {exc}. The read models are half-built: run it again.")
        return 1
    finally:
        await client.close()
    say(f"dropped and rebuilt: {', '.join(done.dropped) or 'nothing (none existed)'}")
    say(done.summary())
    return 0


def run_rebuild(batch: int, say: Callable[[str], None]) -> int:
    """`mlbus logs rebuild`, with the logger's settings from the environment."""
    return asyncio.run(_run(LoggerSettings(), batch, say))
