"""What the Bedrock chat model and the Bedrock embedder share: building the boto3 client and mapping its errors.

boto3 is an optional extra (``answerdesk[bedrock]``), so it is imported here, lazily, and a missing install is a
:class:`ConfigError` with the line to run. Every botocore failure becomes a :class:`ProviderError` whose
``status`` the resilience wrappers can act on:

* service errors carry the HTTP status AWS documents for their code (``ThrottlingException`` 429,
  ``ModelTimeoutException`` 408, ``ServiceUnavailableException`` 503 …), also when they arrive as an
  exception event inside a stream, where there is no HTTP status;
* timeouts and connection failures carry ``status=None``, as in the other providers;
* missing or expired credentials carry 401, so that they fail over instead of being retried.

Nothing is retried by botocore (``total_max_attempts=1``): retries and fallbacks belong to answerdesk's wrappers,
which see every attempt.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from answerdesk.errors import ConfigError, ProviderError

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

INSTALL_HINT = "pip install 'answerdesk[bedrock]'"

#: Status per service error code. Exception events in a stream use the same names with a lower-case initial.
STATUS_BY_CODE: dict[str, int] = {
    "ThrottlingException": 429,
    # Both say "try later": a quota or a model that is still loading is a rate limit, not a bad request
    # (ServiceQuotaExceededException is a 400 on the wire, which would stop the retry).
    "ServiceQuotaExceededException": 429,
    "ModelNotReadyException": 429,
    "ModelTimeoutException": 408,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    # 424 on the wire, but AWS documents them as transient failures of the model behind the service
    # ("Retry your request"), which is what a 502 tells the retry policy.
    "ModelErrorException": 502,
    "ModelStreamErrorException": 502,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
}
#: Status of a request that could not be signed: no, partial or expired credentials.
NO_CREDENTIALS = 401


def runtime_client(
    *,
    region: str | None,
    endpoint_url: str | None,
    timeout_s: float,
    profile: str | None = None,
) -> BedrockRuntimeClient:
    """A ``bedrock-runtime`` client from the standard AWS credential chain (environment, profile, role).

    Raises :class:`ConfigError` when boto3 is not installed, the profile does not exist or no region is set.
    """
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import NoRegionError, ProfileNotFound
    except ImportError as exc:
        raise ConfigError(f"the bedrock provider needs boto3, which is not installed: {INSTALL_HINT}") from exc
    config = Config(
        # ``max_attempts`` counts retries after the first try; ``total_max_attempts`` counts tries.
        retries={"total_max_attempts": 1, "mode": "standard"},
        # A connection either opens within seconds or not at all; the read bound is the attempt's budget.
        connect_timeout=min(timeout_s, 10.0),
        read_timeout=timeout_s,
    )
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
        return session.client("bedrock-runtime", endpoint_url=endpoint_url, config=config)
    except ProfileNotFound as exc:
        raise ConfigError(f"bedrock: AWS profile '{profile}' not found: {exc}") from exc
    except NoRegionError as exc:
        raise ConfigError(
            "bedrock: no AWS region; set options.region (e.g. us-east-1) or AWS_REGION in the environment"
        ) from exc


def provider_error(exc: BaseException, *, label: str, timeout_s: float | None = None) -> ProviderError:
    """The :class:`ProviderError` for a failure of a boto3 call (or of reading its stream); see the module doc."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping) and isinstance(response.get("Error"), Mapping):
        return _service_error(response, label=label)
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, _timeout_errors()):
        within = f" within {timeout_s:.1f} s" if timeout_s is not None else ""
        return ProviderError(f"{label}: no answer{within} (timeout: {detail})")
    if isinstance(exc, _credential_errors()):
        return ProviderError(
            f"{label}: no usable AWS credentials ({detail}); configure the AWS credential chain "
            "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role, or AWS_BEARER_TOKEN_BEDROCK)",
            status=NO_CREDENTIALS,
        )
    if type(exc).__name__ == "ParamValidationError":  # botocore checks parameters before sending
        return ProviderError(f"{label}: request rejected before sending: {exc}", status=400)
    return ProviderError(f"{label}: request failed: {detail}")


def _timeout_errors() -> tuple[type[BaseException], ...]:
    # Reading an event stream goes straight to urllib3, whose errors botocore does not wrap.
    try:
        from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
        from urllib3.exceptions import TimeoutError as Urllib3Timeout
    except ImportError:
        return (TimeoutError,)
    return (TimeoutError, ReadTimeoutError, ConnectTimeoutError, Urllib3Timeout)


def _credential_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore import exceptions as bx
    except ImportError:
        return ()
    return (
        bx.NoCredentialsError,
        bx.PartialCredentialsError,
        bx.CredentialRetrievalError,
        bx.TokenRetrievalError,
        bx.NoAuthTokenError,
        bx.SSOError,
    )


def _service_error(response: Mapping[str, Any], *, label: str) -> ProviderError:
    error = response["Error"]
    metadata = response.get("ResponseMetadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    http_status = metadata.get("HTTPStatusCode")
    headers = metadata.get("HTTPHeaders")
    return service_error(
        str(error.get("Code") or ""),
        str(error.get("Message") or ""),
        label=label,
        http_status=http_status if isinstance(http_status, int) else None,
        retry_after=parse_retry_after(headers) if isinstance(headers, Mapping) else None,
    )


def service_error(
    code: str,
    message: str,
    *,
    label: str,
    http_status: int | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """The :class:`ProviderError` for a Bedrock error ``code`` (``ThrottlingException`` or, from a stream,
    ``throttlingException``): the documented status of the code, else ``http_status``."""
    canonical = code[:1].upper() + code[1:]
    status = STATUS_BY_CODE.get(canonical, http_status)
    kind = "rate limited" if status == 429 else "upstream error" if status is None or status >= 500 else "rejected"
    return ProviderError(
        f"{label}: {canonical or 'error'} ({kind}): {message or '(no message)'}",
        status=status,
        retry_after=retry_after,
    )


def parse_retry_after(headers: Mapping[str, Any], *, now: float | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header (delta-seconds or an HTTP-date), or None.

    botocore lower-cases header names in ``ResponseMetadata.HTTPHeaders``; anything unparseable gives None.
    """
    value = headers.get("retry-after")
    if not isinstance(value, str):
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
