"""Credential verification: who is asking, and how they proved it.

In:  the request headers (``X-API-Key``, ``Authorization``) and the Settings
     (``jwt_secret``, ``api_key``, ``jwks``, ``jwt_audience``).
Out: an ``Identity`` (gateway/identity.py) — the role to switch to and the
     claims that become ``request.jwt.claims`` — or a 401/403 ``GatewayError``.

Credentials are recognised by shape, first match wins (insforge-behavior §1.1):

    X-API-Key: <key>                     API key, any value       -> project_admin
    Authorization: Bearer ik_...         API key                  -> project_admin
    Authorization: Bearer anon_<64 hex>  opaque anon key          -> anon
    Authorization: Bearer <JWT>          user or admin token      -> the role claim
    nothing (or a non-Bearer scheme)     401 "No token provided"

JWTs (postgrest-semantics §13) are verified with **joserfc**: Authlib 1.5+
deprecates ``authlib.jose`` (it warns on import) in favour of joserfc, the same
project's maintained JOSE library, which Authlib itself depends on. HS256/384/512
use ``jwt_secret``; RS*/ES* (and oct keys) may come from ``jwks``, picked by
``kid``. Each algorithm is tied to one key type (``ALGORITHM_KEY_TYPES``), and
joserfc refuses an asymmetric public key as an HMAC secret, so an HS256 token
can never be checked against an RSA public key; ``none`` is never accepted.

Verified claims are cached per token string (bounded LRU); the time claims are
re-checked on every request. A token without ``exp`` would be valid forever, so it is
refused (401, PGRST303) unless its role is ``anon`` (the anon key printed at start-up is
such a token, as InsForge's legacy anon key is: it grants nothing a request without
credentials could not get from the opaque anon key) or ``GATEWAY_JWT_ALLOW_NO_EXP=true``.
Verification runs inline: HMAC costs microseconds
and an RSA/EC public-key check well under a millisecond.

A ``sub`` that is not a uuid never reaches ``request.jwt.claims``: ``auth.uid()``
casts it to uuid and would fail the whole statement. Admin tokens (``local:admin``)
and user tokens alike lose it, so ``auth.uid()`` is NULL for them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import re
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import orjson
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, OctKey, import_key
from starlette.datastructures import Headers

from gateway.errors import GatewayError, forbidden
from gateway.identity import ROLES, Identity, Role
from gateway.settings import Settings

log = logging.getLogger(__name__)

CLOCK_SKEW = 30  # seconds of leeway on exp/nbf/iat (PostgREST's value)
TOKEN_CACHE_SIZE = 10_000  # verified tokens kept; each entry is one token's claims
JWKS_REFETCH_INTERVAL = 30.0  # seconds between JWKS refetches caused by an unknown kid
JWKS_MAX_BYTES = 1 << 20  # a JWKS document larger than this is refused
MIN_SECRET_LENGTH = 32  # HS256 secrets shorter than this are refused at start-up

# The one key type each accepted algorithm may be verified with; anything else
# (``none``, HS with an RSA key, RS with an oct key, ...) is rejected.
ALGORITHM_KEY_TYPES: dict[str, str] = {
    "HS256": "oct", "HS384": "oct", "HS512": "oct",
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
    "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
    "ES256": "EC", "ES384": "EC", "ES512": "EC",
}

# Time claims, each (claim, accepted(value, now), failure description).
TIME_RULES: tuple[tuple[str, Callable[[float, float], bool], str], ...] = (
    ("exp", lambda value, now: value > now - CLOCK_SKEW, "JWT expired"),
    ("nbf", lambda value, now: value <= now + CLOCK_SKEW, "JWT not yet valid"),
    ("iat", lambda value, now: value <= now + CLOCK_SKEW, "JWT issued at future"),
)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_REGISTRY = jws.JWSRegistry(algorithms=list(ALGORITHM_KEY_TYPES), strict_check_header=False)
_REGISTRY.max_header_length = 4096  # room for x5c/x5t headers some issuers add

API_KEY_IDENTITY = Identity("project_admin", {"role": "project_admin"}, via="api_key")
OPAQUE_ANON_IDENTITY = Identity("anon", {"role": "anon"}, via="anon_key")


# --------------------------------------------------------------------------- errors


def invalid_token(description: str, code: str = "PGRST301", message: str = "Invalid token") -> GatewayError:
    """401 for a JWT that fails: PGRST301 malformed/badly signed, PGRST303 bad claims."""
    return GatewayError(401, "AUTH_UNAUTHORIZED", message, code=code, details=description, headers={
        "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'})


def no_credential(message: str = "No token provided") -> GatewayError:
    return GatewayError(401, "AUTH_INVALID_CREDENTIALS", message, headers={"WWW-Authenticate": "Bearer"})


def invalid_api_key() -> GatewayError:
    return GatewayError(401, "AUTH_INVALID_API_KEY", "Invalid API key",
                        headers={"WWW-Authenticate": "Bearer"})


def invalid_anon_key() -> GatewayError:
    return GatewayError(401, "AUTH_INVALID_CREDENTIALS", "Invalid anon key",
                        headers={"WWW-Authenticate": "Bearer"})


def require_admin(identity: Identity) -> Identity:
    """Pass admins through; any other valid credential (a user or the anon key) is a 403.

    A missing or invalid credential never gets here: it is a 401 before.
    """
    if identity.is_admin:
        return identity
    raise forbidden("Admin access required")


# --------------------------------------------------------------------------- issuing


def sign_token(secret: str, claims: Mapping[str, Any], ttl: int | None) -> str:
    """An HS256 JWT over ``claims``; with ``ttl`` (seconds) it also carries iat and exp."""
    body = dict(claims)
    if ttl is not None:
        now = int(time.time())
        body.update(iat=now, exp=now + ttl)
    return jwt.encode({"alg": "HS256"}, body, OctKey.import_key(secret))


def anon_key(secret: str) -> str:
    """The non-expiring anon JWT ``{"role":"anon"}`` that start-up prints."""
    return sign_token(secret, {"role": "anon"}, None)


def opaque_anon_key(secret: str) -> str:
    """The ``anon_<64 hex>`` key: derived from the secret, so nothing needs storing."""
    return "anon_" + hmac.new(secret.encode(), b"anon", hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- claims -> Identity


def is_uuid(value: object) -> bool:
    """What ``auth.uid()`` can cast: the canonical 8-4-4-4-12 hex form."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def admin_identity(sub: object, email: object, via: Literal["jwt", "api_key"]) -> Identity:
    """``{"role":"project_admin"}``, plus sub/email only when sub is a uuid."""
    claims: dict[str, Any] = {"role": "project_admin"}
    if is_uuid(sub):
        claims["sub"] = sub
        if isinstance(email, str):
            claims["email"] = email
    return Identity("project_admin", claims, via=via)


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    """The role claim (default: authenticated with a sub, anon without) and the claims to expose."""
    role = claims.get("role")
    if role is None:
        role = "authenticated" if claims.get("sub") not in (None, "") else "anon"
    if not isinstance(role, str) or role not in ROLES:
        raise invalid_token("Invalid user role claim", "PGRST303", "Invalid user role claim")
    if role == "project_admin":
        return admin_identity(claims.get("sub"), claims.get("email"), "jwt")
    exposed = {**claims, "role": role}
    if not is_uuid(exposed.get("sub")):
        exposed.pop("sub", None)  # auth.uid() must read NULL, not fail the statement
    return Identity(cast(Role, role), exposed, via="jwt")


def check_times(claims: Mapping[str, Any], now: float) -> None:
    """Every present time claim must be a number inside the skewed window."""
    for name, accepted, description in TIME_RULES:
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise invalid_token(f"The JWT '{name}' claim must be a number", "PGRST303")
        if not accepted(value, now):
            raise invalid_token(description, "PGRST303")


def check_audience(claims: Mapping[str, Any], audience: str | None) -> None:
    """With an audience configured, ``aud`` must equal it or list it; no ``aud`` passes."""
    aud = claims.get("aud")
    if audience is None or aud is None:
        return
    if aud == audience or (isinstance(aud, list) and audience in aud):
        return
    raise invalid_token("JWT not in audience", "PGRST303")


# --------------------------------------------------------------------------- JWKS


def read_jwks(location: str) -> bytes:
    """The JWKS document at an http(s) URL or a file path (blocking; run it in a thread)."""
    if location.startswith(("http://", "https://")):
        req = urllib.request.Request(location, headers={"Accept": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw: bytes = resp.read(JWKS_MAX_BYTES + 1)
    else:
        raw = Path(location).read_bytes()
    if len(raw) > JWKS_MAX_BYTES:
        raise ValueError(f"JWKS at {location} is larger than {JWKS_MAX_BYTES} bytes")
    return raw


def parse_jwks(raw: bytes) -> tuple[Key, ...]:
    """Signing keys from a JWKS ``{"keys":[...]}`` or a single JWK; unusable entries are skipped."""
    data = orjson.loads(raw)
    entries = data.get("keys") if isinstance(data, dict) and "keys" in data else [data]
    if not isinstance(entries, list):
        raise ValueError("JWKS 'keys' is not an array")
    keys: list[Key] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = import_key(entry)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            log.warning("skipping JWKS key %s: %s", entry.get("kid"), exc)
            continue
        if key.key_type in ALGORITHM_KEY_TYPES.values():
            keys.append(key)
    return tuple(keys)


class JwksSource:
    """The keys at ``settings.jwks``, refetched on an unknown kid at most once per interval."""

    def __init__(self, location: str, clock: Callable[[], float]) -> None:
        self.location = location  # file path or http(s) URL
        self._clock = clock
        self._keys: tuple[Key, ...] | None = None  # None: not loaded yet
        self._fetched_at = -math.inf  # clock() of the last attempt, successful or not
        self._lock = asyncio.Lock()  # one fetch at a time; waiters reuse its result
        if not location.startswith(("http://", "https://")):
            # a misconfigured file should stop start-up, not turn every token into a 401
            self._keys = parse_jwks(read_jwks(location))
            self._fetched_at = clock()

    async def keys(self) -> tuple[Key, ...]:
        if self._keys is None:
            await self.refresh()
        return self._keys or ()

    async def refresh(self) -> tuple[Key, ...]:
        async with self._lock:
            if self._clock() - self._fetched_at >= JWKS_REFETCH_INTERVAL:
                self._fetched_at = self._clock()
                try:
                    self._keys = parse_jwks(await asyncio.to_thread(read_jwks, self.location))
                except (OSError, ValueError) as exc:
                    log.warning("could not load JWKS from %s: %s", self.location, exc)  # keep the old keys
        return self._keys or ()


def matching_keys(keys: tuple[Key, ...], alg: str, kid: str | None) -> list[Key]:
    """Keys of the algorithm's type, with the token's kid (any, without one) and a compatible alg."""
    kty = ALGORITHM_KEY_TYPES[alg]
    return [k for k in keys
            if k.key_type == kty and (kid is None or k.kid == kid) and k.alg in (None, alg)]


# --------------------------------------------------------------------------- Authenticator


@dataclass(frozen=True)
class Verified:
    claims: dict[str, Any]  # the token's payload: signature and audience already checked
    identity: Identity  # what the claims map to; copied out per request


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup of a lowercase ``name``: Starlette's Headers hold lowercase raw names
    (read directly: a miss through ``get`` costs a KeyError), plain dicts may hold any case."""
    if isinstance(headers, Headers):
        wanted = name.encode("latin-1")
        return next((v.decode("latin-1") for k, v in headers.raw if k == wanted), None)
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


class Authenticator:
    """Turns request headers into an Identity; one per app, shared by all requests."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 cache_size: int = TOKEN_CACHE_SIZE) -> None:
        secret = settings.jwt_secret
        if secret is None or len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        self._secret_key = OctKey.import_key(secret)
        self._api_key = settings.api_key.encode() if settings.api_key else None
        self._anon_key = opaque_anon_key(secret).encode()
        self._audience = settings.jwt_audience
        self._allow_no_exp = settings.jwt_allow_no_exp
        self._jwks = JwksSource(settings.jwks, clock) if settings.jwks else None
        self._clock = clock
        self._cache: OrderedDict[str, Verified] = OrderedDict()
        self._cache_size = cache_size

    async def identify(self, headers: Mapping[str, str]) -> Identity:
        """The caller's identity; 401 when there is no credential or it is invalid."""
        return await self._identify(headers, "No token provided")

    async def identify_admin(self, headers: Mapping[str, str]) -> Identity:
        """Like ``identify``, but only admins pass: 401 none/invalid, 403 a user or the anon key."""
        return require_admin(await self._identify(headers, "No admin token provided"))

    async def _identify(self, headers: Mapping[str, str], missing: str) -> Identity:
        api_key = header(headers, "x-api-key")
        if api_key:  # wins over any Bearer token (the Python SDK always sends it); blank = absent
            return self._check_api_key(api_key)
        scheme, _, token = (header(headers, "authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            raise no_credential(missing)
        token = token.strip()
        if not token:
            raise invalid_token("Empty JWT is sent in Authorization header")
        if token.startswith("ik_"):
            return self._check_api_key(token)
        if token.startswith("anon_"):
            return self._check_anon_key(token)
        return await self._check_jwt(token)

    def _check_api_key(self, given: str) -> Identity:
        if self._api_key is None or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                                            self._api_key):
            raise invalid_api_key()
        return API_KEY_IDENTITY

    def _check_anon_key(self, given: str) -> Identity:
        if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), self._anon_key):
            raise invalid_anon_key()
        return OPAQUE_ANON_IDENTITY

    async def _check_jwt(self, token: str) -> Identity:
        now = self._clock()
        verified = self._cache.get(token)
        if verified is None:
            verified = await self._verify(token)
            check_times(verified.claims, now)
            self._cache[token] = verified
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(token)
            check_times(verified.claims, now)
        ident = verified.identity
        return Identity(ident.role, dict(ident.claims), via=ident.via)

    async def _verify(self, token: str) -> Verified:
        """Signature, payload shape, audience and role: everything that does not depend on time."""
        if token.count(".") != 2:
            raise invalid_token(f"Expected 3 parts in JWT; got {token.count('.') + 1}")
        try:
            obj = jws.extract_compact(token.encode("utf-8", "surrogatepass"), registry=_REGISTRY)
            head = obj.headers()
        except (JoseError, ValueError, TypeError) as exc:
            raise invalid_token("Malformed JWT") from exc
        alg, kid = head.get("alg"), head.get("kid")
        if not isinstance(alg, str) or alg not in ALGORITHM_KEY_TYPES:
            raise invalid_token("Wrong or unsupported encoding algorithm")
        if kid is not None and not isinstance(kid, str):
            raise invalid_token("Malformed JWT")
        keys = await self._keys_for(alg, kid)
        if not keys:
            raise invalid_token("No suitable key or wrong key type")
        if not any(self._signature_ok(obj, key) for key in keys):
            raise invalid_token("JWT cryptographic operation failed")
        try:
            claims = orjson.loads(obj.payload or b"")
        except orjson.JSONDecodeError as exc:
            raise invalid_token("Malformed JWT") from exc
        if not isinstance(claims, dict):
            raise invalid_token("Malformed JWT")
        check_audience(claims, self._audience)
        identity = identity_from_claims(claims)
        if "exp" not in claims and identity.role != "anon" and not self._allow_no_exp:
            raise invalid_token("JWT has no 'exp' claim: tokens for users and admins must expire", "PGRST303")
        return Verified(claims, identity)

    @staticmethod
    def _signature_ok(obj: jws.CompactSignature, key: Key) -> bool:
        try:
            return jws.validate_compact(obj, key, registry=_REGISTRY)
        except (JoseError, ValueError, TypeError):
            return False

    async def _keys_for(self, alg: str, kid: str | None) -> list[Key]:
        """Candidate keys of the algorithm's type; the secret for HS* unless a JWKS kid matched."""
        found = matching_keys(await self._jwks.keys(), alg, kid) if self._jwks else []
        if ALGORITHM_KEY_TYPES[alg] == "oct":
            return found if (kid is not None and found) else [*found, self._secret_key]
        if not found and kid is not None and self._jwks is not None:
            # an unknown kid: the issuer may have rotated its keys since the last fetch
            found = matching_keys(await self._jwks.refresh(), alg, kid)
        return found
