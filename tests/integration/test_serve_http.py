"""The service over real HTTP: uvicorn on a loopback port, SSE parsed from the wire, clients that are slow,
that go away mid-stream, and a shutdown while a stream is in flight. Plus the real ``answerdesk serve``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from answerdesk.serve.base import RequestResult
from tests.unit.serve.conftest import REPLY, Service, build_service

ANSWERDESK = str(Path(sys.executable).with_name("answerdesk"))


class Running:
    def __init__(self, service: Service) -> None:
        config = uvicorn.Config(service.app, host="127.0.0.1", port=0, log_level="warning",  # type: ignore[arg-type]
                                timeout_graceful_shutdown=10)  # fmt: skip
        self.server = uvicorn.Server(config)
        self.service = service
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    server = Running(build_service(tmp_path))
    yield server
    server.stop()
    server.service.store.close()


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, object]]]:
    name = "message"
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            yield name, json.loads(line[5:])
            name = "message"


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_sse_arrives_incrementally_over_the_wire(running: Running) -> None:
    body = {"question": "annual plan refund", "stream": True, "model": "medium"}
    started = time.monotonic()
    seen: list[tuple[str, float]] = []
    with httpx.stream("POST", f"{running.url}/v1/answers", json=body, headers=running.service.headers()) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = []
        for name, data in sse_events(r):
            seen.append((name, time.monotonic() - started))
            events.append((name, data))
    names = [n for n, _ in events]
    assert names[0] == "meta" and names[-1] == "done" and names.count("delta") >= 5
    first_delta = next(t for n, t in seen if n == "delta")
    assert seen[-1][1] - first_delta > 0.5  # text came while the model was still writing, not all at the end
    assert events[-1][1]["text"] == "".join(str(d["text"]) for n, d in events if n == "delta")


def test_a_client_that_disconnects_mid_stream_frees_the_request(running: Running) -> None:
    body = {"question": "annual plan refund", "stream": True, "model": "slow"}
    with httpx.stream("POST", f"{running.url}/v1/answers", json=body, headers=running.service.headers()) as r:
        for name, _ in sse_events(r):
            if name == "delta":
                break  # leave after the first piece of text; the reply would take ~17 s
    hooks = running.service.hooks
    wait_for(lambda: hooks.after_calls, timeout=3)
    result: RequestResult = hooks.after_calls[-1][2]
    assert result.outcome == "aborted" and result.answer is None
    assert 0 < len(result.partial_text) < len(REPLY * 20) / 4
    assert result.seconds < 3
    # The service is free for others right away.
    ok = httpx.get(f"{running.url}/v1/search", params={"q": "refund"}, headers=running.service.headers())
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/answers", {"question": "annual plan refund", "model": "slow"}),
        ("/v1/chat/completions", {"model": "slow", "messages": [{"role": "user", "content": "annual plan refund"}]}),
    ],
)
def test_a_json_client_that_leaves_before_the_answer_cancels_it(
    running: Running, path: str, body: dict[str, object]
) -> None:
    with pytest.raises(httpx.ReadTimeout):  # the reply would take ~17 s; the client gives up after 0.5 s
        httpx.post(f"{running.url}{path}", json=body, headers=running.service.headers(), timeout=0.5)
    hooks = running.service.hooks
    wait_for(lambda: hooks.after_calls, timeout=3)
    result: RequestResult = hooks.after_calls[-1][2]
    assert result.outcome == "aborted" and result.status == 499 and result.answer is None
    assert result.seconds < 3  # the model call was cancelled, not left to run for its 17 s


def test_a_slow_client_does_not_block_others(running: Running) -> None:
    slow = socket.create_connection(("127.0.0.1", running.port))
    try:
        # Headers promise 2 kB of body; only a few bytes ever come.
        key = running.service.keys["agent"].encode()
        slow.sendall(b"POST /v1/answers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2048\r\nX-API-Key: " + key + b"\r\n\r\n{\"qu")  # fmt: skip
        timings = []
        for _ in range(5):
            started = time.monotonic()
            r = httpx.get(f"{running.url}/v1/search", params={"q": "refund"}, headers=running.service.headers())
            timings.append(time.monotonic() - started)
            assert r.status_code == 200
        assert max(timings) < 1.0
    finally:
        slow.close()


def test_shutdown_drains_a_stream_in_flight(running: Running) -> None:
    body = {"question": "annual plan refund", "stream": True, "model": "medium"}
    names = []
    with httpx.stream("POST", f"{running.url}/v1/answers", json=body, headers=running.service.headers()) as r:
        for name, _ in sse_events(r):
            names.append(name)
            if name == "delta" and names.count("delta") == 1:
                running.server.should_exit = True  # as SIGTERM does
    assert names[-1] == "done"
    running.thread.join(10)
    assert not running.thread.is_alive()
    assert running.service.hooks.after_calls[-1][2].outcome == "ok"


@pytest.mark.slow
def test_answerdesk_serve_with_a_key_made_by_answerdesk_keys(tmp_path: Path, repo: Path) -> None:
    # The fake embedder's vectors mean nothing: both gates are off.
    env = {**os.environ, "ANSWERDESK_STORE__PATH": str(tmp_path / "kb.db"), "ANSWERDESK_EMBEDDER__KIND": "fake",
           "ANSWERDESK_GENERATION__RELEVANCE_THRESHOLD": "0.0",
           "ANSWERDESK_GENERATION__ANSWERABILITY": "false"}  # fmt: skip
    run = {"env": env, "cwd": tmp_path, "capture_output": True, "text": True, "timeout": 120}
    ingest = subprocess.run([ANSWERDESK, "ingest", str(repo / "examples" / "kb")], **run)  # type: ignore[call-overload]
    assert ingest.returncode == 0, ingest.stderr
    created = subprocess.run([ANSWERDESK, "keys", "create", "--name", "ci", "--role", "agent", "--json"], **run)  # type: ignore[call-overload]
    key = json.loads(created.stdout)["key"]
    listed = subprocess.run([ANSWERDESK, "keys", "list", "--json"], **run)  # type: ignore[call-overload]
    assert [k["name"] for k in json.loads(listed.stdout)] == ["ci"] and key not in listed.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([ANSWERDESK, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "answerdesk serve did not become ready"
            time.sleep(0.2)
        answer = httpx.post(f"{url}/v1/answers", json={"question": "how long is an EU return label valid?"},
                            headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["citations"] and answer.json()["provider"] == "extractive"
        assert httpx.post(f"{url}/v1/answers", json={"question": "x"}).status_code == 401
        revoked = subprocess.run([ANSWERDESK, "keys", "revoke", key.split("_")[0] + "_" + key.split("_")[1]], **run)  # type: ignore[call-overload]
        assert revoked.returncode == 0
        again = httpx.post(f"{url}/v1/answers", json={"question": "x"}, headers={"X-API-Key": key})
        assert again.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    # uvicorn re-raises the signal it shut down on, so the exit status says SIGTERM; the drain completed.
    assert proc.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in out, out
    assert "alembic" not in out


def test_local_mode_refuses_a_public_bind(tmp_path: Path) -> None:
    env = {**os.environ, "ANSWERDESK_STORE__PATH": str(tmp_path / "kb.db"), "ANSWERDESK_AUTH__MODE": "local"}
    proc = subprocess.run([ANSWERDESK, "serve", "--host", "0.0.0.0"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 3 and "loopback" in proc.stderr


@pytest.mark.slow
def test_a_worker_freezes_its_startup_heap(tmp_path: Path) -> None:
    # A worker's app, built as uvicorn builds it, leaves what startup made out of the collector's full passes.
    env = {**os.environ, "ANSWERDESK_STORE__PATH": str(tmp_path / "kb.db"), "ANSWERDESK_EMBEDDER__KIND": "fake"}
    code = (
        "import gc\n"
        "from answerdesk.cli.serve import make_app\n"
        "before = gc.get_freeze_count()\n"
        "make_app()\n"
        "print(before, gc.get_freeze_count())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert before == 0 and after > 10_000


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the TCP sockets listening on ``port`` (IPv4), from /proc/net/tcp."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    return inodes


def _server_side_inode(port: int, client_port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        if int(local[1], 16) == port and int(remote[1], 16) == client_port:
            return fields[9]
    return None


def _socket_owners(pids: list[int]) -> dict[str, int]:
    """Socket inode → the pid (of ``pids``) that holds it."""
    owners = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = str(fd.readlink())
                if target.startswith("socket:["):
                    owners[target[8:-1]] = pid
    return owners


def _listening_workers(parent: int, port: int) -> list[int]:
    """The child processes of ``parent`` that hold a socket listening on ``port``."""
    listening = _listening_inodes(port)
    return [p for p in _children(parent) if _socket_owners([p]).keys() & listening]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            after_name = stat.read_text().rsplit(")", 1)[1].split()
            if int(after_name[1]) == pid:
                found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balances connections on Linux only")
def test_workers_listen_on_sockets_of_their_own_and_a_dead_one_is_replaced(tmp_path: Path) -> None:
    env = {**os.environ, "ANSWERDESK_STORE__PATH": str(tmp_path / "kb.db"), "ANSWERDESK_EMBEDDER__KIND": "fake",
           "ANSWERDESK_SERVE__SHUTDOWN_GRACE_S": "5"}  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([ANSWERDESK, "serve", "--port", str(port), "--workers", "2"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_for(lambda: len(_listening_workers(proc.pid, port)) == 2, timeout=90)
        workers = _listening_workers(proc.pid, port)
        owners = _socket_owners(workers)
        # Two listening sockets, one in each worker (one shared socket would show one inode in both).
        listening = _listening_inodes(port)
        assert len(listening) == 2 and {owners[i] for i in listening} == set(workers)

        # A burst of connections is spread over both workers (all 24 on one: a chance of about 1 in 8 million).
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(24)]
        try:
            for c in clients:
                c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            for c in clients:
                assert b"200 OK" in c.recv(4096)
            served = _socket_owners(workers)
            holders = [served.get(_server_side_inode(port, c.getsockname()[1]) or "") for c in clients]
        finally:
            for c in clients:
                c.close()
        assert set(holders) == set(workers), holders

        # A worker that dies is replaced, and the port keeps answering meanwhile.
        os.kill(workers[0], signal.SIGKILL)
        wait_for(lambda: len(_listening_inodes(port)) == 2 and workers[0] not in _children(proc.pid), timeout=90)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "exited with status -9; starting another" in out and out.count("Application shutdown complete") == 2
    assert "alembic" not in out
    assert not _children(proc.pid)


def test_workers_on_a_port_another_process_holds_fail_with_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "ANSWERDESK_STORE__PATH": str(tmp_path / "kb.db"), "ANSWERDESK_EMBEDDER__KIND": "fake"}
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = subprocess.run([ANSWERDESK, "serve", "--port", str(port), "--workers", "2"], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "--port" in proc.stderr
