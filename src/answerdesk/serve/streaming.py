"""A streaming response that notices a client going away even while no chunk is being sent.

Starlette only listens for ``http.disconnect`` on older ASGI spec versions and otherwise learns of it when a
send fails, i.e. at the next chunk, which for a slow model can be many seconds later. This response always
listens, cancels the body iterator on disconnect (so the pipeline stops and the hooks record ``aborted``)
and closes the iterator in every case.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send


class EventStream(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterator[bytes], *, headers: Mapping[str, str] | None = None) -> None:
        # no-cache: proxies must not hold an answer back; X-Accel-Buffering: nginx would buffer it otherwise.
        super().__init__(
            content,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
        )
        self._events = content

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            async with anyio.create_task_group() as group:

                async def stream() -> None:
                    with contextlib.suppress(OSError):  # the client went away while we were writing
                        await self.stream_response(send)
                    group.cancel_scope.cancel()

                async def listen() -> None:
                    await self.listen_for_disconnect(receive)
                    group.cancel_scope.cancel()

                group.start_soon(stream)
                group.start_soon(listen)
        finally:
            with anyio.CancelScope(shield=True):
                await self._events.aclose()  # type: ignore[attr-defined]
