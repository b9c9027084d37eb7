"""OIDC bearer tokens checked against a real JWKS served over loopback HTTP, with keys made here."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from answerdesk.config import AuthSettings, JwtSettings
from answerdesk.errors import ProviderError, Unauthorized
from answerdesk.security.auth import ChainAuthenticator
from answerdesk.security.jwt import JwtAuthenticator
from tests.unit.serve.conftest import build_service

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_test"


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return _rsa()


@pytest.fixture(scope="module")
def jwks_url(signing_key: rsa.RSAPrivateKey) -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def settings(url: str) -> JwtSettings:
    return JwtSettings(
        jwks_url=url,
        issuer=ISSUER,
        audience="answerdesk",
        tenant_claim="custom:tenant",
        roles_claim="cognito:groups",
        role_map={"support-leads": "reviewer"},
    )


def token(key: rsa.RSAPrivateKey, *, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    groups = ["support-leads", "agent", "wiki-editors"]
    payload = {"sub": "u-42", "iss": ISSUER, "aud": "answerdesk", "iat": now, "exp": now + 300,
               "custom:tenant": "acme", "cognito:groups": groups, **claims}  # fmt: skip
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def test_claims_map_to_the_principal(jwks_url: str, signing_key: rsa.RSAPrivateKey) -> None:
    principal = JwtAuthenticator(settings(jwks_url)).authenticate(token(signing_key))
    assert principal.subject == "jwt:u-42" and principal.tenant == "acme"
    assert principal.roles == {"reviewer", "agent"}  # renamed via role_map; unknown groups dropped


@pytest.mark.parametrize(
    ("claims", "message"),
    [({"exp": int(time.time()) - 3600}, "(?i)expired"), ({"aud": "someone-else"}, "(?i)audience"),
     ({"iss": "https://evil.example"}, "(?i)issuer")],
)  # fmt: skip
def test_bad_tokens_are_unauthorized(
    jwks_url: str, signing_key: rsa.RSAPrivateKey, claims: dict[str, Any], message: str
) -> None:
    with pytest.raises(Unauthorized, match=message):
        JwtAuthenticator(settings(jwks_url)).authenticate(token(signing_key, **claims))


def test_a_token_signed_by_another_key_is_refused(jwks_url: str) -> None:
    with pytest.raises(Unauthorized, match="rejected"):
        JwtAuthenticator(settings(jwks_url)).authenticate(token(_rsa()))
    with pytest.raises(Unauthorized):
        JwtAuthenticator(settings(jwks_url)).authenticate(token(_rsa(), kid="unknown"))


def test_an_unreachable_identity_provider_is_a_provider_error(signing_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ProviderError, match="identity provider"):
        JwtAuthenticator(settings("http://127.0.0.1:9/jwks.json")).authenticate(token(signing_key))


async def test_the_service_accepts_tokens_and_keys_side_by_side(
    tmp_path: Path, jwks_url: str, signing_key: rsa.RSAPrivateKey
) -> None:
    svc = build_service(
        tmp_path,
        auth=AuthSettings(jwt=settings(jwks_url)),
        authenticator=lambda keys: ChainAuthenticator([keys, JwtAuthenticator(settings(jwks_url))]),
    )
    transport = httpx.ASGITransport(app=svc.app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        bearer = {"Authorization": f"Bearer {token(signing_key)}"}
        r = await c.get("/v1/search", params={"q": "priority tickets"}, headers=bearer)
        assert r.status_code == 200 and "acme-sla" in r.text
        docs = await c.get("/v1/documents", headers=bearer)
        assert docs.status_code == 403  # reviewer and agent, not ingest
        assert (await c.get("/v1/search", params={"q": "x"}, headers=svc.headers())).status_code == 200
        junk = await c.get("/v1/search", params={"q": "x"}, headers={"Authorization": "Bearer not-a-token"})
        assert junk.status_code == 401
