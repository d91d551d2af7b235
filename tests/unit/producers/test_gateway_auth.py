"""Bearer tokens: only a valid token names the player; everything else is a precise 401."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError

from producers.errors import GatewayConfigError
from producers.gateway.auth import TokenVerifier
from producers.gateway.problems import ProblemError
from producers.settings import GatewaySettings

SECRET = "s" * 32
HS256 = GatewaySettings(jwt_secret=SecretStr(SECRET), jwt_leeway_s=0)


def token(key: Any = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    payload = {"sub": "player-1", "exp": int(time.time()) + 300, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm)


def rejection(verifier: TokenVerifier, header: str | None) -> str:
    with pytest.raises(ProblemError) as caught:
        verifier.player_id(header)
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    return caught.value.detail


def test_a_valid_token_names_the_player() -> None:
    assert TokenVerifier(HS256).player_id(f"Bearer {token()}") == "player-1"
    assert TokenVerifier(HS256).player_id(f"bearer  {token()} ") == "player-1"


# Headers are built when each test runs, not when the module is collected: a token minted at
# collection time would have expired by the time a long suite reaches it.
@pytest.mark.parametrize(
    ("header", "says"),
    [
        (lambda: None, "Authorization header is missing"),
        (lambda: "", "Authorization header is missing"),
        (lambda: "Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        (lambda: "Bearer", "must be 'Bearer <token>'"),
        (lambda: "Bearer not.a.jwt", "token rejected"),
        (lambda: f"Bearer {token(key='t' * 32)}", "Signature verification failed"),
        (lambda: f"Bearer {token(exp=int(time.time()) - 5)}", "Signature has expired"),
        (lambda: f"Bearer {token(exp=None)}", 'missing the "exp" claim'),
        (lambda: f"Bearer {token(sub=None)}", 'missing the "sub" claim'),
        (lambda: f"Bearer {token(sub='')}", "printable player id"),
        (lambda: "Bearer " + token(sub="bad\nid"), "printable player id"),
        (lambda: f"Bearer {token(sub='x' * 129)}", "printable player id"),
        (lambda: f"Bearer {token(key=None, algorithm='none')}", "token rejected"),
    ],
)
def test_bad_tokens_are_refused_saying_why(header: Callable[[], str | None], says: str) -> None:
    assert says in rejection(TokenVerifier(HS256), header())


def test_leeway_tolerates_clock_skew() -> None:
    lenient = GatewaySettings(jwt_secret=SecretStr(SECRET), jwt_leeway_s=30)
    assert TokenVerifier(lenient).player_id(f"Bearer {token(exp=int(time.time()) - 5)}")


def test_issuer_and_audience_are_checked_when_configured() -> None:
    settings = GatewaySettings(
        jwt_secret=SecretStr(SECRET), jwt_issuer="auth.game", jwt_audience="liveops"
    )
    verifier = TokenVerifier(settings)
    good = token(iss="auth.game", aud="liveops")
    assert verifier.player_id(f"Bearer {good}") == "player-1"
    assert "issuer" in rejection(verifier, f"Bearer {token(iss='evil', aud='liveops')}")
    assert "Audience" in rejection(verifier, f"Bearer {token(iss='auth.game', aud='other')}")


def test_rs256_tokens_verify_with_the_public_key_and_refuse_algorithm_confusion() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenVerifier(GatewaySettings(jwt_algorithm="RS256", jwt_public_key_pem=public_pem))

    assert verifier.player_id(f"Bearer {token(key=private, algorithm='RS256')}") == "player-1"
    # An HS256 token "signed" with the public key must not pass as RS256.
    assert "token rejected" in rejection(verifier, f"Bearer {token()}")


def test_missing_or_unusable_keys_stop_the_gateway_at_start() -> None:
    with pytest.raises(GatewayConfigError, match="JWT_SECRET"):
        TokenVerifier(GatewaySettings())
    with pytest.raises(GatewayConfigError, match="JWT_PUBLIC_KEY_PEM"):
        TokenVerifier(GatewaySettings(jwt_algorithm="RS256"))
    with pytest.raises(GatewayConfigError, match="not a PEM public key"):
        TokenVerifier(GatewaySettings(jwt_algorithm="RS256", jwt_public_key_pem="garbage"))
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        GatewaySettings(jwt_secret=SecretStr("short"))


def test_the_secret_is_masked_when_settings_are_printed() -> None:
    assert SECRET not in repr(HS256)
    assert SECRET not in HS256.model_dump_json()
