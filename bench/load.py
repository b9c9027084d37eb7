"""Load benchmark of the HTTP service: answerdesk's own overhead under concurrency, beside the LiteLLM proxy.

Everything runs on loopback in one run:

1. a fake OpenAI-compatible upstream (this file, ``--fake-upstream PORT``; a raw ASGI app under uvicorn) that
   behaves like a fast hosted model: the first token after ``--ttft-ms`` (200), then ``--chunks`` (40) chunks
   ``--chunk-gap-ms`` (20) apart, about 1 s a stream (a JSON answer comes after the same time), so model time
   is known and costs no CPU;
2. a real ``answerdesk serve`` process with an ``openai_compat`` model pointing at it, the sample knowledge
   base (``examples/kb``), the real packaged embedder, default guardrails, rate limits, budgets and lineage on;
3. the LiteLLM proxy (``litellm --config``), in its own virtualenv, pointing at the same upstream.

N concurrent clients (httpx async) send requests for M seconds per phase, streaming and not, to the
upstream directly, to answerdesk's ``/v1/answers`` and ``/v1/chat/completions``, and to LiteLLM. Then a
short phase with a rate-limited key checks that the 429s are the deliberate ones, and the lineage records
are counted against the accepted request ids.

Two last answerdesk phases stream answers from second services (``VARIANTS``): one embeds questions on the
other graph precision (``embedder.query_precision``), one uses the hashing fake embedder, to separate the
embedding model's inference from answerdesk's own code. Every phase also reports the CPU the service used per
request (from ``/proc``), which contention does not inflate.

Overhead, two ways:
- **server-side** (answerdesk only; the issue's definition): request time in answerdesk minus provider time,
  per request, read from its lineage record (``latency_ms`` − ``timings.model``). It includes auth, limits,
  budgets, input guards, query embedding and retrieval (~20 ms on 2 cores), prompt, output guards, lineage.
- **client-side** (both, comparable): median/p99 latency through the service minus the same percentile
  sent straight to the upstream at the same concurrency (LiteLLM's own definition of its overhead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from answerdesk.config import EmbedderSettings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "load.json"
ANSWERDESK = str(Path(sys.executable).with_name("answerdesk"))
#: Where ``bench/README.md`` tells to install LiteLLM (its pins conflict with answerdesk's, see there).
LITELLM = os.environ.get("LOAD_BENCH_LITELLM", str(ROOT / "build" / "litellm-venv" / "bin" / "litellm"))
REPLY = (
    "Annual plans are refunded in full within 30 days of the charge [1]. After that, the unused months are "
    "credited to your account rather than paid back, and monthly plans can be cancelled at any time [1]."
)
#: The fake model's timing (``--ttft-ms``, ``--chunks``, ``--chunk-gap-ms``): set in the upstream process.
UPSTREAM = {"ttft_ms": 200.0, "chunks": 40, "chunk_gap_ms": 20.0}
SAMPLE_KB = ROOT / "examples" / "kb"
#: Real support questions (banking77), so that nearly every request embeds a question it has not seen.
TRAFFIC = ROOT.parent / "shared" / "data" / "traffic" / "banking77" / "utterances.jsonl"
LIMITED_RPM = 6
LITELLM_KEY = "sk-load-" + uuid.uuid4().hex

KB = {
    "refunds.md": "# Refunds\n\nAnnual plans are refunded in full within 30 days of the charge. Monthly plans "
    "are not refunded, but you can cancel at any time from the Billing page.",
    "labels.md": "# Shipping labels\n\nThermal printers print 4x6 shipping labels from the Orders page. Pick "
    "the printer under Settings, then Print label on any order.",
    "sla.md": "# Support hours\n\nPriority tickets are answered within 2 hours, every day of the year. Other "
    "tickets are answered within one business day.",
    "returns.md": "# Returns\n\nA return label is emailed within 24 hours of a return request. Items must be "
    "sent back within 14 days, unused and in their packaging.",
}
QUESTIONS = [
    "How are annual plans refunded?",
    "How do I print a 4x6 shipping label?",
    "How fast are priority tickets answered?",
    "When do I get a return label?",
]


def load_questions(path: Path = TRAFFIC, *, seed: int = 7) -> list[str]:
    """Support questions in a fixed shuffled order; the four built-in ones when the traffic set is missing."""
    if not path.exists():
        print(f"{path} not found: sending the {len(QUESTIONS)} built-in questions", file=sys.stderr)
        return QUESTIONS
    import random

    texts = sorted({json.loads(line)["text"].strip() for line in path.open(encoding="utf-8") if line.strip()})
    random.Random(seed).shuffle(texts)
    return texts


# -- fake upstream ---------------------------------------------------------------------------------------------


async def fake_upstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A minimal OpenAI-compatible ``/v1/chat/completions`` (and ``/v1/models``) as a raw ASGI app."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"].endswith("/models"):
        await _json(send, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        return
    request = json.loads(body or b"{}")
    reply = fake_reply(request)
    created = int(time.time())
    usage = {"prompt_tokens": 300, "completion_tokens": 16, "total_tokens": 316}
    ttft, chunks, gap = UPSTREAM["ttft_ms"] / 1000, int(UPSTREAM["chunks"]), UPSTREAM["chunk_gap_ms"] / 1000
    if not request.get("stream"):
        await asyncio.sleep(ttft + chunks * gap)
        await _json(send, {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": usage,
        })  # fmt: skip
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})  # fmt: skip
    await asyncio.sleep(ttft)
    step = -(-len(reply) // chunks)
    for i in range(chunks):
        chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": "fake-model",
                 "choices": [{"index": 0, "delta": {"content": reply[i * step:(i + 1) * step]},
                              "finish_reason": None}]}  # fmt: skip
        await send({"type": "http.response.body", "body": b"data: " + json.dumps(chunk).encode() + b"\n\n",
                    "more_body": True})  # fmt: skip
        await asyncio.sleep(gap)
    final = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": "fake-model",
             "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}  # fmt: skip
    tail = b"data: " + json.dumps(final).encode() + b"\n\ndata: [DONE]\n\n"
    await send({"type": "http.response.body", "body": tail, "more_body": False})


_SOURCE = re.compile(r'<source id="1"[^>]*>\s*(.*?)</source>', re.S)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def fake_reply(request: dict[str, Any]) -> str:
    """What the fake model says: like a model following answerdesk's prompt, the first two sentences of source
    1 with a citation each (so the answer is grounded and the output checks do their usual work, not the
    refusal path); for a prompt without sources (the LiteLLM phases), the fixed reply."""
    messages = request.get("messages") or [{}]
    found = _SOURCE.search(str(messages[-1].get("content", "")))
    if not found:
        return REPLY
    lines = [line for line in found.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    sentences = [s for s in _SENTENCE.split(" ".join(lines).strip()) if s][:2]
    return " ".join(f"{s.rstrip('.!?')} [1]." for s in sentences) or REPLY


async def _json(send: Any, data: object) -> None:
    raw = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


# -- processes -------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(
    url: str, *, timeout: float, proc: subprocess.Popen[bytes], headers: dict[str, str] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=headers, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


@contextlib.contextmanager
def process(args: list[str], *, log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def answerdesk_config(work: Path, *, upstream: int, port: int, embedder: dict[str, str] | None = None) -> Path:
    config = {
        "embedder": embedder or {"kind": "local"},
        "store": {"path": str(work / "kb.db")},
        "lineage": {"path": str(work / "lineage")},
        "observe": {"json_logs": True, "log_level": "WARNING"},
        "serve": {"port": port, "request_timeout_s": 60},
        "limits": {"tenants": {"limited": {"requests_per_minute": LIMITED_RPM}}},
        "budgets": {"tenants": {"*": {"daily_usd": 1000.0}}},
        "generation": {
            "models": {
                "fake": {
                    "kind": "openai_compat",
                    "model": "fake-model",
                    "base_url": f"http://127.0.0.1:{upstream}/v1",
                    "api_key": "sk-fake",
                    "price_input_per_1k": 0.0005,
                    "price_output_per_1k": 0.0015,
                }
            },
            "routes": {"default": ["fake"]},
            # Every question reaches the model, so that the time around a model call is what is measured;
            # the answerability gate still runs (its threshold is out of reach).
            "relevance_threshold": 0.0,
            "answerability_threshold": 1.0,
        },
    }
    path = work / "answerdesk.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def setup_answerdesk(work: Path, config: Path, env: dict[str, str]) -> dict[str, str]:
    cli(config, env, "ingest", str(SAMPLE_KB))
    keys = {}
    for tenant in ("bench", "limited"):
        out = cli(config, env, "keys", "create", "--name", f"load-{tenant}", "--role", "agent", "--tenant", tenant,
                  "--json")  # fmt: skip
        keys[tenant] = json.loads(out)["key"]
    return keys


def cli(config: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run([ANSWERDESK, "-c", str(config), *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"answerdesk {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def litellm_config(work: Path, upstream: int) -> Path:
    config = {
        "model_list": [{"model_name": "fake-model", "litellm_params": {
            "model": "openai/fake-model", "api_base": f"http://127.0.0.1:{upstream}/v1", "api_key": "sk-fake"}}],
        "litellm_settings": {"drop_params": True, "telemetry": False},
        # Callers authenticate, as they do with answerdesk (the proxy refuses to start without a key).
        "general_settings": {"master_key": LITELLM_KEY},
    }  # fmt: skip
    path = work / "litellm.yaml"
    path.write_text(json.dumps(config))
    return path


# -- load ------------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    target: str  # "direct" | "answerdesk" | "litellm"
    url: str
    stream: bool
    body: str  # "answers" | "chat"
    headers: dict[str, str] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    first_byte: list[float] = field(default_factory=list)
    header_overhead_ms: list[float] = field(default_factory=list)
    #: LiteLLM's own figure, from its ``x-litellm-overhead-duration-ms`` response header.
    litellm_overhead_ms: list[float] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: CPU seconds used while the phase ran: by the service under test (every process of it), by this load
    #: generator, and by the fake upstream.
    cpu_s: dict[str, float] = field(default_factory=dict)


def request_body(phase: Phase, i: int, questions: list[str]) -> dict[str, Any]:
    question = questions[i % len(questions)]
    if phase.body == "answers":
        return {"question": question, "stream": phase.stream}
    model = "default" if phase.target == "answerdesk" else "fake-model"
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": question}],
                            "stream": phase.stream, "max_tokens": 64}  # fmt: skip
    if phase.stream:
        body["stream_options"] = {"include_usage": True}
    return body


async def one(client: httpx.AsyncClient, phase: Phase, i: int, questions: list[str]) -> None:
    request_id = f"{phase.name}-{i}-{uuid.uuid4().hex[:8]}"
    headers = {**phase.headers, "X-Request-ID": request_id}
    started = time.perf_counter()
    try:
        async with client.stream(
            "POST", phase.url, json=request_body(phase, i, questions), headers=headers
        ) as response:
            first = None
            async for _ in response.aiter_raw():
                first = first or time.perf_counter()
            done = time.perf_counter()
    except httpx.HTTPError as exc:
        phase.errors.append(f"{type(exc).__name__}: {exc}")
        return
    status = str(response.status_code)
    phase.statuses[status] = phase.statuses.get(status, 0) + 1
    if response.status_code != 200:
        return
    phase.accepted.append(request_id)
    phase.latencies.append(done - started)
    phase.first_byte.append((first or done) - started)
    overhead = response.headers.get("x-answerdesk-overhead-ms")
    if overhead is not None and not phase.stream:
        phase.header_overhead_ms.append(float(overhead))
    litellm = response.headers.get("x-litellm-overhead-duration-ms")
    if litellm is not None:
        with contextlib.suppress(ValueError):
            phase.litellm_overhead_ms.append(float(litellm))


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its live descendants, from ``/proc`` (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    return sum(used.get(p, 0.0) for p in tree)


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    own = os.times()
    return {"loadgen": own.user + own.system, **{name: tree_cpu_s(pid) for name, pid in pids.items()}}


async def run_phase(
    phase: Phase,
    *,
    clients: int,
    seconds: float,
    questions: list[str],
    counter: Iterator[int],
    pids: dict[str, int] | None = None,
) -> Phase:
    """``clients`` workers sending back to back for ``seconds``. ``counter`` runs across phases, so no phase
    sends a question an earlier one sent (as long as the pool lasts): caches see real traffic, not replays."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0)) as client:
        # Warm up the connections and the service's first-call paths outside the measurement.
        warm = Phase("warm", phase.target, phase.url, phase.stream, phase.body, dict(phase.headers))
        await asyncio.gather(*(one(client, warm, next(counter), questions) for _ in range(clients)))
        stop = time.perf_counter() + seconds
        started = time.perf_counter()
        cpu_before = cpu_snapshot(pids or {})

        async def worker() -> None:
            while time.perf_counter() < stop:
                await one(client, phase, next(counter), questions)

        await asyncio.gather(*(worker() for _ in range(clients)))
        phase.seconds = time.perf_counter() - started
        phase.cpu_s = {k: v - cpu_before[k] for k, v in cpu_snapshot(pids or {}).items()}
    return phase


# -- figures ---------------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summary(phase: Phase) -> dict[str, Any]:
    ms = [v * 1000 for v in phase.latencies]
    return {
        "name": phase.name, "target": phase.target, "stream": phase.stream, "requests": len(ms),
        "rps": len(ms) / phase.seconds if phase.seconds else 0.0,
        "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "p99_ms": pct(ms, 99),
        "ttfb_p50_ms": pct([v * 1000 for v in phase.first_byte], 50),
        "statuses": phase.statuses, "errors": len(phase.errors), "error_samples": phase.errors[:3],
        "header_overhead_p50_ms": pct(phase.header_overhead_ms, 50) if phase.header_overhead_ms else None,
        "litellm_header_overhead_p50_ms": pct(phase.litellm_overhead_ms, 50) if phase.litellm_overhead_ms else None,
        "litellm_header_overhead_p99_ms": pct(phase.litellm_overhead_ms, 99) if phase.litellm_overhead_ms else None,
        "cpu_s": {k: round(v, 2) for k, v in phase.cpu_s.items()},
        # CPU the service spent per completed request: its cost with contention taken out of the picture.
        "service_cpu_ms_per_request": phase.cpu_s["service"] * 1000 / len(ms) if ms and "service" in phase.cpu_s
        else None,
        "cpu_share": sum(phase.cpu_s.values()) / phase.seconds / (os.cpu_count() or 1) if phase.seconds
        else None,
    }  # fmt: skip


def lineage_overheads(
    root: Path, accepted: dict[str, str]
) -> tuple[dict[str, list[float]], set[str], dict[str, list[float]]]:
    """Server-side overhead (ms) per phase from the lineage records of accepted requests (``accepted`` maps
    request ids to phase names), the request ids that have a ``responses/`` record, and each pipeline
    stage's times (ms)."""
    by_kind: dict[str, list[float]] = {}
    found: set[str] = set()
    stages: dict[str, list[float]] = {}
    for path in (root / "responses").rglob("*.json") if (root / "responses").is_dir() else ():
        if ".feedback-" in path.name:
            continue
        record = json.loads(path.read_text())
        found.add(record["request_id"])
        timings = record.get("timings")
        # Refusals and guard replacements count too: they did the same work before the model was asked.
        if record["request_id"] not in accepted or not timings:
            continue
        by_kind.setdefault(accepted[record["request_id"]], []).append(
            record["latency_ms"] - timings.get("model", 0.0) * 1000
        )
        for stage, seconds in timings.items():
            stages.setdefault(stage, []).append(seconds * 1000)
    return by_kind, found, stages


def fmt(value: object) -> str:
    if isinstance(value, float):
        return "—" if value != value else f"{value:.1f}"
    return str(value)


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = [max(len(c), *(len(fmt(r.get(c))) for r in rows)) for c in columns]
    print(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True)))


# -- the service layer alone ------------------------------------------------------------------------------------


async def hook_costs(work: Path, n: int = 400) -> dict[str, float]:
    """Per-request time (ms) of the request hooks alone, in process, one request at a time: metrics and the
    log line, rate limits, budgets and the ledger (SQLite), lineage (3 files). No HTTP, no pipeline."""
    import logging

    from prometheus_client import CollectorRegistry

    from answerdesk.config import BudgetRule, BudgetSettings, LimitSettings, LineageSettings, RateSettings
    from answerdesk.cost.budgets import BudgetHooks
    from answerdesk.cost.sqlite import SqliteCounterStore
    from answerdesk.lineage.hooks import LineageHooks
    from answerdesk.lineage.local import LocalBlobStore
    from answerdesk.observe.metrics import ObservedHooks, ServiceMetrics
    from answerdesk.security.ratelimit import RateLimitHooks
    from answerdesk.serve.base import CompositeHooks, RequestInfo, RequestResult
    from answerdesk.types import Answer, Citation, Principal, ScoredChunk, Usage

    logging.getLogger("answerdesk.requests").setLevel(logging.WARNING)
    counters = SqliteCounterStore(work / "hooks.db")
    limits = LimitSettings(per_key=RateSettings(requests_per_minute=10**9, tokens_per_minute=10**12),
                           per_tenant=RateSettings(requests_per_minute=10**9))  # fmt: skip
    budgets = BudgetSettings(tenants={"*": BudgetRule(daily_usd=1e9, monthly_usd=1e9)},
                             tags={"cost_centre": {"*": BudgetRule(daily_usd=1e9)}})  # fmt: skip
    inner = CompositeHooks([RateLimitHooks(limits, counters), BudgetHooks(budgets, counters),
                            LineageHooks(LineageSettings(), LocalBlobStore(work / "hooks-lineage"))])  # fmt: skip
    hooks = ObservedHooks(inner, ServiceMetrics(CollectorRegistry()))
    who = Principal(subject="ak_00000001", tenant="acme", roles=frozenset({"agent"}))
    sources = tuple(ScoredChunk(f"doc{i}#0", f"doc{i}", KB["refunds.md"], 0.8 - i / 10) for i in range(6))
    answer = Answer(
        request_id="r", question=QUESTIONS[0], text=REPLY, citations=(Citation(1, "doc0#0", "doc0", "Refunds",
        "refunds.md", None, "Annual plans"),), confidence=0.8, refused=False, refusal_reason=None,
        prompt_name="answer", prompt_version=1, prompt_sha256="ab" * 32, route="default", route_reason="default",
        provider="openai_compat", model="fake-model", usage=Usage(300, 16), cost_usd=0.0002,
        retrieval_query=QUESTIONS[0], sources=sources, timings={"retrieve": 0.02, "model": 0.01, "total": 0.04},
    )  # fmt: skip
    times = []
    for i in range(n):
        info = RequestInfo(request_id=f"h{i}", endpoint="answers", method="POST", path="/v1/answers", stream=True,
                           question=QUESTIONS[0], tags={"cost_centre": "cc-7"})  # fmt: skip
        started = time.perf_counter()
        await hooks.before(who, info)
        await hooks.after(who, info, RequestResult("ok", 200, 0.05, answer=answer))
        times.append((time.perf_counter() - started) * 1000)
    counters.close()
    return {"requests": n, "p50_ms": pct(times, 50), "p95_ms": pct(times, 95), "p99_ms": pct(times, 99)}


# -- main ------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients per phase (32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per phase (10)")
    parser.add_argument("--skip-litellm", action="store_true", help="measure answerdesk only")
    parser.add_argument("--ttft-ms", type=float, default=UPSTREAM["ttft_ms"], help="fake model: first token (200)")
    parser.add_argument("--chunks", type=int, default=int(UPSTREAM["chunks"]), help="fake model: chunks (40)")
    parser.add_argument("--chunk-gap-ms", type=float, default=UPSTREAM["chunk_gap_ms"],
                        help="fake model: time between chunks (20)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="worker processes, answerdesk and LiteLLM alike (1)")
    parser.add_argument("--phases", help="comma-separated phase names to run (default: all)")
    parser.add_argument("--skip-fake-embedder", action="store_true",
                        help="leave out the stream phase against a service with the hashing fake embedder")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--keep-work", action="store_true",
                        help="keep the temporary folder (config, service logs, lineage) to inspect")  # fmt: skip
    parser.add_argument("--fake-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    UPSTREAM.update(ttft_ms=args.ttft_ms, chunks=args.chunks, chunk_gap_ms=args.chunk_gap_ms)
    if args.fake_upstream:
        import uvicorn

        uvicorn.run(fake_upstream, host="127.0.0.1", port=args.fake_upstream, log_level="warning",
                    access_log=False, lifespan="on")  # fmt: skip
        return 0
    return asyncio.run(bench(args))


async def bench(args: argparse.Namespace) -> int:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OPENBLAS_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    work = Path(tempfile.mkdtemp(prefix="answerdesk-load-"))
    up_port, ad_port, ll_port = free_port(), free_port(), free_port()
    up_url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
    phases: list[Phase] = []
    litellm_ok = not args.skip_litellm and Path(LITELLM).exists()
    config = answerdesk_config(work, upstream=up_port, port=ad_port)
    print(f"setting up in {work} (ingest + keys) ...", file=sys.stderr)
    keys = setup_answerdesk(work, config, env)
    hooks = await hook_costs(work)
    bench_key = {"Authorization": f"Bearer {keys['bench']}"}
    questions, counter = load_questions(), itertools.count()
    args.question_pool = len(questions)
    # The load generator's own full collections took up to 250 ms here (it imports answerdesk for the hook
    # costs), pausing every client at once; freezing what setup made keeps them out of the measured latency.
    gc.collect()
    gc.freeze()
    wanted = set(args.phases.split(",")) if args.phases else None
    timing = ["--ttft-ms", str(args.ttft_ms), "--chunks", str(args.chunks), "--chunk-gap-ms", str(args.chunk_gap_ms)]
    with contextlib.ExitStack() as stack:
        up = stack.enter_context(process([sys.executable, __file__, "--fake-upstream", str(up_port), *timing],
                                         log=work / "upstream.log", env=env))  # fmt: skip
        wait_http(f"http://127.0.0.1:{up_port}/v1/models", timeout=30, proc=up)
        ad = stack.enter_context(
            process(
                [ANSWERDESK, "-c", str(config), "serve", "--port", str(ad_port), "--workers", str(args.workers)],
                log=work / "answerdesk.log",
                env=env,
            )
        )
        wait_http(f"http://127.0.0.1:{ad_port}/readyz", timeout=120, proc=ad)
        ad_base = f"http://127.0.0.1:{ad_port}"
        plan = [
            Phase("direct-json", "direct", up_url, False, "chat"),
            Phase("direct-stream", "direct", up_url, True, "chat"),
            Phase("answers-json", "answerdesk", f"{ad_base}/v1/answers", False, "answers", dict(bench_key)),
            Phase("answers-stream", "answerdesk", f"{ad_base}/v1/answers", True, "answers", dict(bench_key)),
            Phase("chat-json", "answerdesk", f"{ad_base}/v1/chat/completions", False, "chat", dict(bench_key)),
            Phase("chat-stream", "answerdesk", f"{ad_base}/v1/chat/completions", True, "chat", dict(bench_key)),
        ]
        for phase in plan:
            if wanted is not None and phase.name not in wanted:
                continue
            print(f"phase {phase.name}: {args.clients} clients x {args.seconds:g} s", file=sys.stderr)
            pids = {"upstream": up.pid} if phase.target == "direct" else {"service": ad.pid, "upstream": up.pid}
            phases.append(await run_phase(phase, clients=args.clients, seconds=args.seconds, questions=questions,
                                          counter=counter, pids=pids))  # fmt: skip
        limited = Phase("limited-429", "answerdesk", f"{ad_base}/v1/answers", False, "answers",
                        {"Authorization": f"Bearer {keys['limited']}"})  # fmt: skip
        print("phase limited-429: 4 clients x 3 s on a key of a tenant limited to 30/min", file=sys.stderr)
        phases.append(await run_phase(limited, clients=4, seconds=3, questions=questions, counter=counter))
        ad.terminate()
        ad.wait(30)
        for variant in VARIANTS:
            skipped = variant is FAKE_EMBEDDER and args.skip_fake_embedder
            if not skipped and (wanted is None or variant.phase in wanted):
                phases.append(await variant_phase(variant, args, work, up.pid, up_port, env, questions, counter))
        if litellm_ok:
            ll_args = [LITELLM, "--config", str(litellm_config(work, up_port)), "--host", "127.0.0.1",
                       "--port", str(ll_port), "--num_workers", str(args.workers)]  # fmt: skip
            ll_env = {**env, "LITELLM_LOG": "ERROR"}
            ll = stack.enter_context(process(ll_args, log=work / "litellm.log", env=ll_env))
            wait_http(f"http://127.0.0.1:{ll_port}/health/liveliness", timeout=180, proc=ll)
            ll_url, ll_key = (
                f"http://127.0.0.1:{ll_port}/v1/chat/completions",
                {"Authorization": f"Bearer {LITELLM_KEY}"},
            )
            for phase in (
                Phase("litellm-json", "litellm", ll_url, False, "chat", dict(ll_key)),
                Phase("litellm-stream", "litellm", ll_url, True, "chat", dict(ll_key)),
            ):
                if wanted is not None and phase.name not in wanted:
                    continue
                print(f"phase {phase.name}: {args.clients} clients x {args.seconds:g} s", file=sys.stderr)
                pids = {"service": ll.pid, "upstream": up.pid}
                phases.append(await run_phase(phase, clients=args.clients, seconds=args.seconds, questions=questions,
                                              counter=counter, pids=pids))  # fmt: skip
    return report(args, phases, work, litellm_ok, hooks)


@dataclass(frozen=True)
class Variant:
    """A second service, its embedder configured otherwise, measured on the streaming answers phase."""

    name: str
    embedder: dict[str, str]
    why: str

    @property
    def phase(self) -> str:
        return f"answers-stream-{self.name}"


#: The service's default precision for questions (``embedder.query_precision``), and the other one.
DEFAULT_PRECISION = EmbedderSettings().query_precision
_OTHER_PRECISION = "int8" if DEFAULT_PRECISION == "fp32" else "fp32"
FAKE_EMBEDDER = Variant(
    "fake-embedder",
    {"kind": "fake"},
    "the hashing fake embedder: what answerdesk's own code costs at the same concurrency once the embedding "
    "model's inference (the question for retrieval and the topic guard, the answer for the relevance check) "
    "is out of the picture",
)
VARIANTS = (
    Variant(
        f"{_OTHER_PRECISION}-queries",
        {"kind": "local", "query_precision": _OTHER_PRECISION},
        f"questions embedded on the {_OTHER_PRECISION} graph instead of the default one",
    ),
    FAKE_EMBEDDER,
)


async def variant_phase(
    variant: Variant,
    args: argparse.Namespace,
    work: Path,
    upstream_pid: int,
    upstream: int,
    env: dict[str, str],
    questions: list[str],
    counter: Iterator[int],
) -> Phase:
    """The streaming answers phase again, against a second service set up as ``variant`` says."""
    own = work / variant.name
    own.mkdir()
    port = free_port()
    config = answerdesk_config(own, upstream=upstream, port=port, embedder=variant.embedder)
    keys = setup_answerdesk(own, config, env)
    with process([ANSWERDESK, "-c", str(config), "serve", "--port", str(port), "--workers", str(args.workers)],
                 log=own / "answerdesk.log", env=env) as ad:  # fmt: skip
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=120, proc=ad)
        phase = Phase(variant.phase, "answerdesk", f"http://127.0.0.1:{port}/v1/answers", True,
                      "answers", {"Authorization": f"Bearer {keys['bench']}"})  # fmt: skip
        print(f"phase {phase.name} ({variant.why}): {args.clients} clients x {args.seconds:g} s", file=sys.stderr)
        return await run_phase(phase, clients=args.clients, seconds=args.seconds, questions=questions,
                               counter=counter, pids={"service": ad.pid, "upstream": upstream_pid})  # fmt: skip


def report(args: argparse.Namespace, phases: list[Phase], work: Path, litellm_ok: bool, hooks: dict[str, float]) -> int:
    rows = [summary(p) for p in phases]
    by_name = {r["name"]: r for r in rows}
    for r in rows:
        base = by_name.get("direct-stream" if r["stream"] else "direct-json")
        if r["target"] != "direct" and base:
            r["client_overhead_p50_ms"] = r["p50_ms"] - base["p50_ms"]
            r["client_overhead_p99_ms"] = r["p99_ms"] - base["p99_ms"]
    print(f"\nLoad: {args.clients} concurrent clients, {args.seconds:g} s per phase, loopback, {os.cpu_count()} CPUs")
    print_table(rows, ["name", "requests", "rps", "p50_ms", "p95_ms", "p99_ms", "ttfb_p50_ms", "errors",
                       "client_overhead_p50_ms", "client_overhead_p99_ms", "header_overhead_p50_ms",
                       "litellm_header_overhead_p50_ms", "service_cpu_ms_per_request", "cpu_share"])  # fmt: skip

    accepted = {rid: p.name for p in phases if p.target == "answerdesk" for rid in p.accepted}
    by_kind, found, stages = lineage_overheads(work / "lineage", accepted)
    variant_p50: dict[str, dict[str, float]] = {}
    for variant in VARIANTS:
        its_kind, its_found, its_stages = lineage_overheads(work / variant.name / "lineage", accepted)
        by_kind.update(its_kind)
        found |= its_found
        if its_stages:
            variant_p50[variant.name] = {stage: round(pct(v, 50), 2) for stage, v in sorted(its_stages.items())}
    server = [{"kind": k, "requests": len(v), "p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "p99_ms": pct(v, 99)}
              for k, v in sorted(by_kind.items())]  # fmt: skip
    print("\nanswerdesk server-side overhead (request time - provider time, from lineage records)")
    print_table(server, ["kind", "requests", "p50_ms", "p95_ms", "p99_ms"])
    stage_p50 = {stage: round(pct(v, 50), 2) for stage, v in sorted(stages.items())}
    print(f"request hooks alone (limits, budgets + ledger, lineage, metrics + log; in process, one at a time): "
          f"p50 {hooks['p50_ms']:.2f} ms, p99 {hooks['p99_ms']:.2f} ms")  # fmt: skip
    print("pipeline stages, p50 ms (from the answers' timings): "
          + ", ".join(f"{k} {v:.1f}" for k, v in stage_p50.items()))  # fmt: skip
    for name, p50 in variant_p50.items():
        print(f"the same stages, {name}, p50 ms: " + ", ".join(f"{k} {v:.1f}" for k, v in p50.items()))

    missing = sorted(set(accepted) - found)
    unexpected = {p.name: {s: n for s, n in p.statuses.items() if s != "200"} for p in phases
                  if p.name != "limited-429" and (p.errors or any(s != "200" for s in p.statuses))}  # fmt: skip
    limited = by_name["limited-429"]["statuses"]
    stream = next((s for s in server if s["kind"] == "answers-stream"), None)
    ll_stream, ad_chat_stream = by_name.get("litellm-stream"), by_name.get("chat-stream")
    # The issue sets its targets at 32 streams; a run with another --clients says what it measured.
    streams = f"answers, {args.clients} stream{'s' if args.clients != 1 else ''}"
    verdicts = {
        f"overhead p50 <= 10 ms ({streams})": bool(stream and stream["p50_ms"] <= 10),
        f"overhead p99 <= 40 ms ({streams})": bool(stream and stream["p99_ms"] <= 40),
        "client overhead below LiteLLM (chat streams, p50)": bool(
            ll_stream
            and ad_chat_stream
            and ad_chat_stream["client_overhead_p50_ms"] < ll_stream["client_overhead_p50_ms"]
        ),
        "no errors but deliberate 429s": not unexpected and "200" in limited and "429" in limited,
        "every accepted request has its lineage record": not missing,
    }
    print()
    for name, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    if litellm_ok:
        measured = "measured"
    elif args.skip_litellm:
        measured = "NOT measured (--skip-litellm)"
    else:
        measured = f"NOT measured (not installed at {LITELLM})"
    print(f"lineage: {len(accepted) - len(missing)}/{len(accepted)} accepted answerdesk requests have a record; "
          f"limited key: {limited}; LiteLLM {measured}")  # fmt: skip
    if args.question_pool == len(QUESTIONS):
        print(f"WARNING: {TRAFFIC} was not found, so only the {len(QUESTIONS)} built-in questions were sent: the "
              "caches answered the repeats, and these figures are not comparable with a full run")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "clients": args.clients, "seconds_per_phase": args.seconds, "cpus": os.cpu_count(),
        "fake_upstream": dict(UPSTREAM), "workers": args.workers, "questions": args.question_pool,
        "phases": rows, "server_overhead": server, "stage_p50_ms": stage_p50,
        "query_precision": DEFAULT_PRECISION,
        "stage_p50_ms_variants": variant_p50, "hooks_alone": hooks,
        "lineage": {"accepted": len(accepted), "with_record": len(accepted) - len(missing), "missing": missing[:20]},
        "unexpected_statuses": unexpected, "litellm_measured": litellm_ok,
        "verdicts": {k: "PASS" if v else "FAIL" for k, v in verdicts.items()},
    }, indent=2, default=str))  # fmt: skip
    print(f"wrote {args.out}", file=sys.stderr)
    if args.keep_work:
        print(f"kept {work} (config, logs, lineage records)", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
