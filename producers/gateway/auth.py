"""Bearer-token authentication: who the player is comes from the token, never from the body.

Every route except the probes (/healthz, /readyz, /metrics) sits behind the middleware, routes
other layers add included; a handler reads the verified player id with `player_id_of(request)`.
"""

from __future__ import annotations

from collections.abc import Collection

import jwt
from aiohttp import web
from aiohttp.typedefs import Middleware
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from producers.errors import GatewayConfigError
from producers.gateway.problems import Handler, unauthorized
from producers.settings import GatewaySettings

#: Where the middleware puts the verified player id on the request (a typed key: aiohttp warns
#: about plain string keys).
PLAYER_ID = web.RequestKey("player_id", str)
PLAYER_ID_MAX_CHARS = 128
#: Claims a token must carry: a subject (the player) and an expiry (no eternal tokens).
REQUIRED_CLAIMS = ("sub", "exp")


class TokenVerifier:
    """Checks bearer tokens against the one key and algorithm the settings name."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._leeway_s = settings.jwt_leeway_s
        self._key: str | RSAPublicKey = _key_for(settings)

    def player_id(self, authorization: str | None) -> str:
        """The player id (`sub`) of a valid `Bearer` token; 401 problem otherwise."""
        if not authorization:
            raise unauthorized("the Authorization header is missing")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidTokenError as exc:
            raise unauthorized(f"token rejected: {exc}") from None
        subject = claims["sub"]
        if (
            not isinstance(subject, str)
            or not 0 < len(subject) <= PLAYER_ID_MAX_CHARS
            or not subject.isprintable()
            or subject != subject.strip()
        ):
            raise unauthorized(
                f"token subject must be a printable player id of 1 to {PLAYER_ID_MAX_CHARS} "
                "characters"
            )
        return subject


def _key_for(settings: GatewaySettings) -> str | RSAPublicKey:
    if settings.jwt_algorithm == "HS256":
        if settings.jwt_secret is None:
            raise GatewayConfigError("HS256 tokens need LIVEOPS_GATEWAY__JWT_SECRET")
        return settings.jwt_secret.get_secret_value()
    if not settings.jwt_public_key_pem:
        raise GatewayConfigError("RS256 tokens need LIVEOPS_GATEWAY__JWT_PUBLIC_KEY_PEM")
    try:
        key = load_pem_public_key(settings.jwt_public_key_pem.encode())
    except ValueError as exc:
        raise GatewayConfigError(f"jwt_public_key_pem is not a PEM public key: {exc}") from exc
    if not isinstance(key, RSAPublicKey):
        raise GatewayConfigError("jwt_public_key_pem must be an RSA public key for RS256")
    return key


def auth_middleware(verifier: TokenVerifier, public_paths: Collection[str]) -> Middleware:
    """Verify the bearer token of every request but the probes, before any body is read."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in public_paths:
            request[PLAYER_ID] = verifier.player_id(request.headers.get("Authorization"))
        return await handler(request)

    return middleware


def player_id_of(request: web.Request) -> str:
    """The player id the auth middleware verified for this request."""
    return request[PLAYER_ID]
