"""Lua scripts called with one batch's keys and arguments, packed by hiredis.

redis-py packs a command in Python at about 1 us per argument: 1-4 ms for one batch's claim,
mark-done or scoring call, on the worker's critical path. hiredis packs the same bytes in C in
a tenth of that. The reply is read and parsed by the connection as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
import redis.asyncio as aioredis
import redis.exceptions

from workers.errors import DependencyUnavailableError


class BatchScript:
    """One Lua script on one client; `await script(keys, args)` runs it with EVALSHA.

    Raises DependencyUnavailableError when Redis cannot be reached (hold position), and
    redis.exceptions.ResponseError when the script itself failed (a bug: not retried here).
    """

    def __init__(self, client: aioredis.Redis, source: str) -> None:
        self._client = client
        self._source = source
        self._script = client.register_script(source)

    @property
    def sha(self) -> str:
        return str(self._script.sha)

    async def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            try:
                return await self._evalsha(keys, args)
            except redis.exceptions.NoScriptError:  # a restarted or flushed Redis
                await self._client.script_load(self._source)
                return await self._evalsha(keys, args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise DependencyUnavailableError(f"redis: {exc}") from exc

    async def _evalsha(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        packed = hiredis.pack_command(("EVALSHA", self.sha, len(keys), *keys, *args))
        pool = self._client.connection_pool
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        try:
            await connection.send_packed_command(packed)
            return await connection.read_response()
        except redis.exceptions.ResponseError:
            raise  # an answer: the connection is in a clean state
        except BaseException:
            # Anything else (a lost connection, a cancellation mid-reply) may leave an unread
            # reply behind: never hand this connection out again as it is.
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)
