"""Worker processes for ``answerdesk serve --workers N``, each listening on a socket of its own.

uvicorn's multi-worker mode hands one listening socket to every worker. The worker that wakes first accepts
every connection waiting, so a burst of keep-alive connections (a load balancer's pool, an SDK's) stays on one
worker while the others idle. Measured in ``bench/load.py`` with 32 streaming clients and 2 workers: one worker
served 412 and 411 of about 490 requests in two runs. Here every worker binds its own socket to the same port
with ``SO_REUSEPORT`` (Linux), and the kernel spreads new connections across the workers' sockets by their
addresses: 339 / 157 and 244 / 251 requests in the same runs. Server overhead p50 / p99 went from 28.0 / 310.8
and 37.7 / 284.3 ms to 24.2 / 203.1 and 27.4 / 162.2 ms.

:class:`WorkerPool` starts the workers, replaces one that dies, and on SIGTERM or SIGINT asks each to shut down
gracefully (uvicorn drains its in-flight requests and streams) before it returns.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, replace
from multiprocessing.process import BaseProcess
from types import FrameType

from answerdesk.errors import ConfigError

log = logging.getLogger(__name__)

#: uvicorn's exit status for a worker that failed before serving (the app or the socket is broken, and would
#: fail the same way again): the pool stops instead of starting it over and over.
STARTUP_FAILURE = 3
#: Seconds a worker may take past the shutdown grace before it is killed.
KILL_AFTER_S = 10.0


def reuse_port_supported() -> bool:
    """Whether the kernel spreads connections across sockets sharing a port (Linux). Other systems accept
    ``SO_REUSEPORT`` without balancing: one socket would get every connection."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_reuse_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` that other sockets of this user may bind too; not listening yet.
    Raises :class:`ConfigError` when the address cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; another process may hold the port "
            "(pick another with --port or serve.port)"
        ) from exc
    return sock


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What a worker process needs to serve (picklable: workers are spawned, not forked)."""

    app: str
    host: str
    port: int
    shutdown_grace_s: int
    log_level: str = "info"


def serve_worker(spec: WorkerSpec) -> None:
    """One worker process: its own socket on the shared port, then uvicorn until it is told to stop."""
    import uvicorn

    try:
        sock = bind_reuse_port(spec.host, spec.port)
    except ConfigError as exc:
        log.error("%s", exc)
        sys.exit(STARTUP_FAILURE)
    config = uvicorn.Config(
        spec.app,
        factory=True,
        host=spec.host,
        port=spec.port,
        timeout_graceful_shutdown=spec.shutdown_grace_s,
        log_level=spec.log_level,
        access_log=False,
    )
    uvicorn.Server(config).run(sockets=[sock])


class WorkerPool:
    """``workers`` processes serving ``spec``; :meth:`run` blocks until a signal stops them."""

    def __init__(self, spec: WorkerSpec, workers: int, *, check_every_s: float = 0.5) -> None:
        self._spec = spec
        self._workers = workers
        self._check_every_s = check_every_s
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self._processes: list[BaseProcess] = []

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; the exit status (0, or :data:`STARTUP_FAILURE`)."""
        # Bound for the pool's lifetime and never listening: it keeps the port while a worker is replaced,
        # and resolves port 0 to the port every worker binds. Only listening sockets are handed connections.
        anchor = bind_reuse_port(self._spec.host, self._spec.port)
        spec = replace(self._spec, port=anchor.getsockname()[1])
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        status = 0
        try:
            self._processes = [self._start(spec, n) for n in range(self._workers)]
            while not self._stop.wait(self._check_every_s):
                if self._replace_dead(spec):
                    status = STARTUP_FAILURE
                    break
        finally:
            self._shut_down()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            anchor.close()
        return status

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _start(self, spec: WorkerSpec, n: int) -> BaseProcess:
        process = self._context.Process(target=serve_worker, args=(spec,), name=f"answerdesk-worker-{n}")
        process.start()
        log.info("worker %d started [pid %s] on %s:%d", n, process.pid, spec.host, spec.port)
        return process

    def _replace_dead(self, spec: WorkerSpec) -> bool:
        """Start a new worker for each one that exited; True when one failed at startup (stop the pool)."""
        for n, process in enumerate(self._processes):
            if process.is_alive() or self._stop.is_set():
                continue
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker %d [pid %s] failed to start; stopping", n, process.pid)
                return True
            log.warning("worker %d [pid %s] exited with status %s; starting another", n, process.pid,
                        process.exitcode)  # fmt: skip
            self._processes[n] = self._start(spec, n)
        return False

    def _shut_down(self) -> None:
        """SIGTERM to every worker (uvicorn's graceful shutdown), then wait; kill what outlives the grace."""
        for process in self._processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._spec.shutdown_grace_s + KILL_AFTER_S
        for process in self._processes:
            process.join(max(deadline - time.monotonic(), 0.0))
            if process.is_alive():
                log.warning("worker [pid %s] did not stop within the grace; killing it", process.pid)
                process.kill()
                process.join()
