"""Credential verification (gateway/auth.py): every credential shape, every way one can be bad.

Pure: no database. Keys are generated with ``cryptography``; bad tokens are
crafted by hand so that no library refuses to build them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, Key, RSAKey
from starlette.datastructures import Headers

from gateway import auth
from gateway.auth import Authenticator, anon_key, opaque_anon_key, require_admin, sign_token
from gateway.errors import GatewayError
from gateway.identity import ANON, Identity
from gateway.settings import Settings

SECRET = "test-secret-that-is-at-least-32-characters-long"
OTHER_SECRET = "another-secret-that-is-also-32-characters-long"
API_KEY = "ik_" + "ab" * 32
AUDIENCE = "gateway"
NOW = 1_700_000_000.0
USER = "6f1c1f7a-1d2b-4a8e-9c3d-0a1b2c3d4e5f"


def _pem(private: Any) -> bytes:
    return bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


RSA_A = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_B = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_STRANGER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_C = ec.generate_private_key(ec.SECP256R1())
KEY_A, KEY_B, KEY_STRANGER = (RSAKey.import_key(_pem(k)) for k in (RSA_A, RSA_B, RSA_STRANGER))
KEY_C = ECKey.import_key(_pem(EC_C))
RSA_A_PUBLIC_PEM = RSA_A.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def jwk(key: Key, kid: str) -> dict[str, Any]:
    return {**key.as_dict(private=False), "kid": kid, "use": "sig"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: Any) -> str:
    return b64(json.dumps(obj).encode())


def hand_signed(header: dict[str, Any], claims: Any, hmac_key: bytes) -> str:
    """An HS-style token whose HMAC key is whatever bytes we like (for confusion attacks)."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    return f"{signing_input}.{b64(hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest())}"


def unsigned(claims: Any, alg: str = "none") -> str:
    return f"{segment({'alg': alg, 'typ': 'JWT'})}.{segment(claims)}."


def hs(claims: dict[str, Any], secret: str = SECRET, **header: Any) -> str:
    return sign_token(secret, claims, None) if not header else hand_signed(
        {"alg": "HS256", "typ": "JWT", **header}, claims, secret.encode())


def signed(key: Key, alg: str, claims: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": alg, **header}, claims, key)


def user(**extra: Any) -> dict[str, Any]:
    return {"sub": USER, "email": "u@example.com", "role": "authenticated", "exp": NOW + 900, **extra}


def bearer(token: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"authorization": f"{scheme} {token}"}


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(KEY_A, "a"), jwk(KEY_B, "b"), jwk(KEY_C, "c")]}))
    return path


@pytest.fixture(scope="module")
def authn(jwks_file: Path) -> Authenticator:
    settings = Settings(jwt_secret=SECRET, api_key=API_KEY, jwks=str(jwks_file), jwt_audience=AUDIENCE)
    return Authenticator(settings, clock=lambda: NOW)


def tampered(token: str) -> str:
    head, _, sig = token.split(".")
    return f"{head}.{segment(user(role='project_admin'))}.{sig}"


# --------------------------------------------------------------------------- accepted credentials

ACCEPTED: list[tuple[str, dict[str, str], str, str, dict[str, Any]]] = [
    # (case, headers, role, via, claims that must be present)
    ("x_api_key", {"x-api-key": API_KEY}, "project_admin", "api_key", {"role": "project_admin"}),
    ("bearer_api_key", bearer(API_KEY), "project_admin", "api_key", {"role": "project_admin"}),
    ("opaque_anon_key", bearer(opaque_anon_key(SECRET)), "anon", "anon_key", {"role": "anon"}),
    ("anon_jwt", bearer(anon_key(SECRET)), "anon", "jwt", {"role": "anon"}),
    ("hs256_user", bearer(hs(user())), "authenticated", "jwt", {"sub": USER, "email": "u@example.com"}),
    ("lowercase_scheme", bearer(hs(user()), "bearer"), "authenticated", "jwt", {"sub": USER}),
    ("uppercase_scheme", bearer(hs(user()), "BEARER"), "authenticated", "jwt", {"sub": USER}),
    ("rs256_kid_a", bearer(signed(KEY_A, "RS256", user(), kid="a")), "authenticated", "jwt", {"sub": USER}),
    ("rs256_kid_b", bearer(signed(KEY_B, "RS256", user(), kid="b")), "authenticated", "jwt", {"sub": USER}),
    ("rs256_no_kid_tries_each_rsa_key", bearer(signed(KEY_B, "RS256", user())), "authenticated", "jwt", {}),
    ("es256_kid_c", bearer(signed(KEY_C, "ES256", user(), kid="c")), "authenticated", "jwt", {"sub": USER}),
    ("hs256_with_a_kid_not_in_jwks", bearer(hs(user(), kid="issuer-1")), "authenticated", "jwt", {}),
    ("missing_role_with_sub", bearer(hs({"sub": USER, "exp": NOW + 900})), "authenticated", "jwt",
     {"role": "authenticated"}),
    ("missing_role_without_sub", bearer(hs({"email": "x@example.com"})), "anon", "jwt", {"role": "anon"}),
    ("expired_within_clock_skew", bearer(hs(user(exp=NOW - 20))), "authenticated", "jwt", {}),
    ("nbf_and_iat_within_clock_skew", bearer(hs(user(nbf=NOW + 20, iat=NOW + 20))), "authenticated", "jwt",
     {}),
    ("audience_equal", bearer(hs(user(aud=AUDIENCE))), "authenticated", "jwt", {"aud": AUDIENCE}),
    ("audience_listed", bearer(hs(user(aud=["other", AUDIENCE]))), "authenticated", "jwt", {}),
    ("no_audience", bearer(hs(user())), "authenticated", "jwt", {}),
    ("extra_header_parameter", bearer(hs(user(), x_custom="1")), "authenticated", "jwt", {}),
]


@pytest.mark.parametrize(("headers", "role", "via", "claims"), [c[1:] for c in ACCEPTED],
                         ids=[c[0] for c in ACCEPTED])
async def test_each_valid_credential_shape_yields_its_role(
        authn: Authenticator, headers: dict[str, str], role: str, via: str, claims: dict[str, Any]) -> None:
    identity = await authn.identify(headers)
    assert (identity.role, identity.via) == (role, via)
    assert identity.claims["role"] == role
    assert claims.items() <= identity.claims.items()


# --------------------------------------------------------------------------- rejected credentials

Rejection = tuple[str, dict[str, str], str, str, str | None, str | None]


def refused(case: str, headers: dict[str, str], error: str, message: str) -> Rejection:
    """A non-JWT credential refused: no PostgREST code, no description."""
    return (case, headers, error, message, None, None)


def bad_jwt(case: str, token: str, code: str, description: str, message: str = "Invalid token") -> Rejection:
    """A JWT refused: PGRST301 (shape, algorithm, signature) or PGRST303 (claims)."""
    return (case, bearer(token), "AUTH_UNAUTHORIZED", message, code, description)


CRYPTO, NO_KEY, BAD_ALG = ("JWT cryptographic operation failed", "No suitable key or wrong key type",
                           "Wrong or unsupported encoding algorithm")
ROLE = "Invalid user role claim"

REJECTED: list[Rejection] = [
    refused("nothing", {}, "AUTH_INVALID_CREDENTIALS", "No token provided"),
    refused("basic_scheme", bearer("dXNlcjpwYXNz", "Basic"), "AUTH_INVALID_CREDENTIALS", "No token provided"),
    refused("wrong_x_api_key", {"x-api-key": "ik_" + "00" * 32}, "AUTH_INVALID_API_KEY", "Invalid API key"),
    refused("x_api_key_without_prefix", {"x-api-key": "guess"}, "AUTH_INVALID_API_KEY", "Invalid API key"),
    refused("wrong_bearer_api_key", bearer("ik_" + "00" * 32), "AUTH_INVALID_API_KEY", "Invalid API key"),
    refused("wrong_anon_key", bearer("anon_" + "0" * 64), "AUTH_INVALID_CREDENTIALS", "Invalid anon key"),
    refused("anon_key_of_another_secret", bearer(opaque_anon_key(OTHER_SECRET)), "AUTH_INVALID_CREDENTIALS",
            "Invalid anon key"),
    ("empty_bearer", {"authorization": "Bearer "}, "AUTH_UNAUTHORIZED", "Invalid token", "PGRST301",
     "Empty JWT is sent in Authorization header"),
    bad_jwt("expired", hs(user(exp=NOW - 3600)), "PGRST303", "JWT expired"),
    bad_jwt("expired_beyond_clock_skew", hs(user(exp=NOW - 31)), "PGRST303", "JWT expired"),
    bad_jwt("not_yet_valid", hs(user(nbf=NOW + 60)), "PGRST303", "JWT not yet valid"),
    bad_jwt("issued_in_the_future", hs(user(iat=NOW + 60)), "PGRST303", "JWT issued at future"),
    bad_jwt("exp_not_a_number", hs(user(exp=str(NOW + 900))), "PGRST303",
            "The JWT 'exp' claim must be a number"),
    bad_jwt("exp_boolean", hs(user(exp=True)), "PGRST303", "The JWT 'exp' claim must be a number"),
    bad_jwt("nbf_not_a_number", hs(user(nbf="yesterday")), "PGRST303",
            "The JWT 'nbf' claim must be a number"),
    bad_jwt("wrong_signature", hs(user(), OTHER_SECRET), "PGRST301", CRYPTO),
    bad_jwt("tampered_payload", tampered(hs(user())), "PGRST301", CRYPTO),
    bad_jwt("signature_stripped", hs(user()).rsplit(".", 1)[0] + ".", "PGRST301", CRYPTO),
    bad_jwt("alg_none", unsigned(user()), "PGRST301", BAD_ALG),
    bad_jwt("alg_None_capitalised", unsigned(user(), "None"), "PGRST301", BAD_ALG),
    bad_jwt("forged_unsigned_admin", unsigned({"role": "project_admin", "sub": USER}), "PGRST301", BAD_ALG),
    bad_jwt("unsupported_alg", hand_signed({"alg": "HS999"}, user(), SECRET.encode()), "PGRST301", BAD_ALG),
    bad_jwt("hs256_signed_with_rsa_public_pem_and_kid",
            hand_signed({"alg": "HS256", "kid": "a"}, user(role="project_admin"), RSA_A_PUBLIC_PEM),
            "PGRST301", CRYPTO),
    bad_jwt("hs256_signed_with_rsa_public_pem",
            hand_signed({"alg": "HS256"}, user(role="project_admin"), RSA_A_PUBLIC_PEM), "PGRST301", CRYPTO),
    bad_jwt("rs256_header_over_an_hmac_signature",
            hand_signed({"alg": "RS256", "kid": "a"}, user(), SECRET.encode()), "PGRST301", CRYPTO),
    bad_jwt("rs256_by_a_stranger_claiming_kid_a", signed(KEY_STRANGER, "RS256", user(), kid="a"),
            "PGRST301", CRYPTO),
    bad_jwt("rs256_kid_b_signed_by_key_a", signed(KEY_A, "RS256", user(), kid="b"), "PGRST301", CRYPTO),
    bad_jwt("rs256_unknown_kid", signed(KEY_A, "RS256", user(), kid="zzz"), "PGRST301", NO_KEY),
    bad_jwt("es256_header_with_an_rsa_kid", signed(KEY_C, "ES256", user(), kid="a"), "PGRST301", NO_KEY),
    bad_jwt("garbage", "not-a-token", "PGRST301", "Expected 3 parts in JWT; got 1"),
    bad_jwt("two_parts", ".".join(hs(user()).split(".")[:2]), "PGRST301", "Expected 3 parts in JWT; got 2"),
    bad_jwt("four_parts", hs(user()) + ".x", "PGRST301", "Expected 3 parts in JWT; got 4"),
    bad_jwt("header_not_json", "bm90IGpzb24." + hs(user()).split(".", 1)[1], "PGRST301", "Malformed JWT"),
    bad_jwt("payload_not_an_object", hand_signed({"alg": "HS256"}, [1, 2], SECRET.encode()), "PGRST301",
            "Malformed JWT"),
    bad_jwt("audience_mismatch", hs(user(aud="someone-else")), "PGRST303", "JWT not in audience"),
    bad_jwt("audience_list_without_ours", hs(user(aud=["a", "b"])), "PGRST303", "JWT not in audience"),
    bad_jwt("unknown_role", hs(user(role="service_role")), "PGRST303", ROLE, ROLE),
    bad_jwt("database_superuser_role", hs(user(role="postgres")), "PGRST303", ROLE, ROLE),
    bad_jwt("role_not_a_string", hs(user(role=["anon"])), "PGRST303", ROLE, ROLE),
]


@pytest.mark.parametrize(("headers", "error", "message", "code", "description"), [c[1:] for c in REJECTED],
                         ids=[c[0] for c in REJECTED])
async def test_each_bad_credential_is_rejected_with_401(
        authn: Authenticator, headers: dict[str, str], error: str, message: str, code: str | None,
        description: str | None) -> None:
    with pytest.raises(GatewayError) as caught:
        await authn.identify(headers)
    err = caught.value
    assert (err.status, err.error, err.message, err.code, err.details) == (
        401, error, message, code, description)
    expected_challenge = "Bearer" if description is None else (
        f'Bearer error="invalid_token", error_description="{description}"')
    assert err.headers["WWW-Authenticate"] == expected_challenge


# --------------------------------------------------------------------------- precedence and claims


async def test_x_api_key_wins_over_a_bearer_user_token(authn: Authenticator) -> None:
    identity = await authn.identify({"x-api-key": API_KEY, **bearer(hs(user()))})
    assert (identity.role, identity.via, dict(identity.claims)) == (
        "project_admin", "api_key", {"role": "project_admin"})


async def test_a_wrong_x_api_key_fails_even_with_a_valid_bearer_token(authn: Authenticator) -> None:
    with pytest.raises(GatewayError) as caught:
        await authn.identify({"x-api-key": "wrong", **bearer(hs(user()))})
    assert caught.value.error == "AUTH_INVALID_API_KEY"


@pytest.mark.parametrize("headers", [
    {"X-API-Key": API_KEY},
    {"Authorization": f"Bearer {API_KEY}"},
    Headers(headers={"x-api-key": API_KEY}),
    Headers(raw=[(b"authorization", f"Bearer {API_KEY}".encode())]),
], ids=["dict_x_api_key", "dict_authorization", "starlette_x_api_key", "starlette_authorization"])
async def test_header_names_are_matched_case_insensitively(authn: Authenticator, headers: Any) -> None:
    assert (await authn.identify(headers)).is_admin


@pytest.mark.parametrize("sub", ["local:admin", "admin", 42, "", None])
async def test_admin_claims_never_carry_a_non_uuid_sub(authn: Authenticator, sub: Any) -> None:
    claims = {"role": "project_admin", "email": "admin@example.com", "exp": NOW + 60}
    if sub is not None:
        claims["sub"] = sub
    identity = await authn.identify(bearer(hs(claims)))
    assert (identity.role, dict(identity.claims)) == ("project_admin", {"role": "project_admin"})


async def test_an_admin_token_with_a_uuid_sub_keeps_sub_and_email_only(authn: Authenticator) -> None:
    identity = await authn.identify(bearer(hs(user(role="project_admin", iat=NOW, extra="x"))))
    assert dict(identity.claims) == {"role": "project_admin", "sub": USER, "email": "u@example.com"}


async def test_a_user_token_with_a_non_uuid_sub_runs_without_sub(authn: Authenticator) -> None:
    identity = await authn.identify(bearer(hs(user(sub="github|12345"))))
    assert identity.role == "authenticated"
    assert "sub" not in identity.claims
    assert identity.claims["email"] == "u@example.com"


async def test_a_user_token_exposes_all_its_claims_with_role_filled_in(authn: Authenticator) -> None:
    claims = {"sub": USER, "email": "u@example.com", "exp": NOW + 60, "app_metadata": {"plan": "pro"}}
    identity = await authn.identify(bearer(hs(claims)))
    assert dict(identity.claims) == {**claims, "role": "authenticated"}


async def test_changing_a_returned_identity_does_not_change_the_next_one(authn: Authenticator) -> None:
    token = hs(user())
    first = await authn.identify(bearer(token))
    first.claims["sub"] = "tampered"  # type: ignore[index]
    assert (await authn.identify(bearer(token))).claims["sub"] == USER


async def test_a_cached_token_is_still_time_checked_on_every_request() -> None:
    clock = [NOW]
    authn = Authenticator(Settings(jwt_secret=SECRET, api_key=API_KEY), clock=lambda: clock[0])
    token = hs(user(exp=NOW + 60))
    assert (await authn.identify(bearer(token))).role == "authenticated"
    clock[0] = NOW + 120
    with pytest.raises(GatewayError) as caught:
        await authn.identify(bearer(token))
    assert caught.value.details == "JWT expired"


async def test_the_token_cache_is_bounded() -> None:
    authn = Authenticator(Settings(jwt_secret=SECRET), clock=lambda: NOW, cache_size=2)
    for n in range(5):
        await authn.identify(bearer(hs(user(n=n))))
    assert len(authn._cache) == 2


async def test_without_an_audience_setting_any_aud_passes() -> None:
    authn = Authenticator(Settings(jwt_secret=SECRET), clock=lambda: NOW)
    assert (await authn.identify(bearer(hs(user(aud="anything"))))).role == "authenticated"


async def test_without_a_jwks_an_rs256_token_is_rejected() -> None:
    authn = Authenticator(Settings(jwt_secret=SECRET), clock=lambda: NOW)
    with pytest.raises(GatewayError) as caught:
        await authn.identify(bearer(signed(KEY_A, "RS256", user(), kid="a")))
    assert caught.value.code == "PGRST301"


async def test_without_an_api_key_setting_every_api_key_is_rejected() -> None:
    authn = Authenticator(Settings(jwt_secret=SECRET), clock=lambda: NOW)
    for headers in ({"x-api-key": "ik_"}, bearer("ik_")):
        with pytest.raises(GatewayError) as caught:
            await authn.identify(headers)
        assert caught.value.error == "AUTH_INVALID_API_KEY"


@pytest.mark.parametrize("secret", [None, "short"])
def test_a_missing_or_short_secret_is_refused_at_start(secret: str | None) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        Authenticator(Settings(jwt_secret=secret))


# --------------------------------------------------------------------------- admin endpoints

ADMIN_CASES: list[tuple[str, dict[str, str], int, str, str]] = [
    # (case, headers, status, error, message); status 200 means the admin identity comes back
    ("nothing", {}, 401, "AUTH_INVALID_CREDENTIALS", "No admin token provided"),
    ("opaque_anon_key", bearer(opaque_anon_key(SECRET)), 403, "FORBIDDEN", "Admin access required"),
    ("anon_jwt", bearer(anon_key(SECRET)), 403, "FORBIDDEN", "Admin access required"),
    ("invalid_token", bearer("garbage"), 401, "AUTH_UNAUTHORIZED", "Invalid token"),
    ("wrong_api_key", {"x-api-key": "nope"}, 401, "AUTH_INVALID_API_KEY", "Invalid API key"),
    ("user_token", bearer(hs(user())), 403, "FORBIDDEN", "Admin access required"),
    ("x_api_key", {"x-api-key": API_KEY}, 200, "", ""),
    ("bearer_api_key", bearer(API_KEY), 200, "", ""),
    ("admin_jwt", bearer(hs({"sub": "local:admin", "role": "project_admin", "exp": NOW + 60})), 200, "", ""),
]


@pytest.mark.parametrize(("headers", "status", "error", "message"), [c[1:] for c in ADMIN_CASES],
                         ids=[c[0] for c in ADMIN_CASES])
async def test_admin_endpoints_admit_only_api_keys_and_admin_tokens(
        authn: Authenticator, headers: dict[str, str], status: int, error: str, message: str) -> None:
    if status == 200:
        identity = await authn.identify_admin(headers)
        assert (identity.role, dict(identity.claims)) == ("project_admin", {"role": "project_admin"})
        return
    with pytest.raises(GatewayError) as caught:
        await authn.identify_admin(headers)
    assert (caught.value.status, caught.value.error, caught.value.message) == (status, error, message)


@pytest.mark.parametrize(("identity", "status"), [
    (ANON, 403), (Identity("authenticated", {"role": "authenticated"}), 403), (auth.API_KEY_IDENTITY, None)])
def test_require_admin_lets_only_admins_through(identity: Identity, status: int | None) -> None:
    if status is None:
        assert require_admin(identity) is identity
        return
    with pytest.raises(GatewayError) as caught:
        require_admin(identity)
    assert caught.value.status == status


# --------------------------------------------------------------------------- issuing


def test_sign_token_with_a_ttl_adds_iat_and_exp() -> None:
    token = sign_token(SECRET, {"sub": USER, "role": "authenticated"}, 900)
    claims = jwt.decode(token, auth.OctKey.import_key(SECRET)).claims
    assert claims["exp"] - claims["iat"] == 900
    assert (claims["sub"], claims["role"]) == (USER, "authenticated")


def test_the_anon_key_is_a_non_expiring_anon_jwt() -> None:
    token = jwt.decode(anon_key(SECRET), auth.OctKey.import_key(SECRET))
    assert token.header["alg"] == "HS256"
    assert token.claims == {"role": "anon"}


def test_the_opaque_anon_key_is_an_hmac_of_the_secret() -> None:
    key = opaque_anon_key(SECRET)
    assert key == "anon_" + hmac.new(SECRET.encode(), b"anon", hashlib.sha256).hexdigest()
    assert len(key) == len("anon_") + 64
    assert opaque_anon_key(OTHER_SECRET) != key


# --------------------------------------------------------------------------- JWKS over http


class _JwksServer(ThreadingHTTPServer):
    document: dict[str, Any]
    fetches: int


class _JwksHandler(BaseHTTPRequestHandler):
    server: _JwksServer

    def do_GET(self) -> None:
        self.server.fetches += 1
        body = json.dumps(self.server.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def jwks_server() -> Iterator[_JwksServer]:
    server = _JwksServer(("127.0.0.1", 0), _JwksHandler)
    server.document, server.fetches = {"keys": [jwk(KEY_A, "a")]}, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


async def test_a_rotated_jwks_url_is_refetched_for_an_unknown_kid_at_most_once_per_interval(
        jwks_server: _JwksServer) -> None:
    clock = [NOW]
    url = f"http://127.0.0.1:{jwks_server.server_address[1]}/jwks.json"
    authn = Authenticator(Settings(jwt_secret=SECRET, jwks=url), clock=lambda: clock[0])

    assert (await authn.identify(bearer(signed(KEY_A, "RS256", user(), kid="a")))).role == "authenticated"
    assert jwks_server.fetches == 1

    jwks_server.document = {"keys": [jwk(KEY_A, "a"), jwk(KEY_B, "b")]}  # the issuer rotates
    token_b = signed(KEY_B, "RS256", user(), kid="b")
    clock[0] = NOW + 5  # too soon after the last fetch: no refetch, so kid b is unknown
    with pytest.raises(GatewayError):
        await authn.identify(bearer(token_b))
    assert jwks_server.fetches == 1

    clock[0] = NOW + auth.JWKS_REFETCH_INTERVAL + 1
    assert (await authn.identify(bearer(token_b))).role == "authenticated"
    assert jwks_server.fetches == 2

    with pytest.raises(GatewayError):  # still unknown right after a fetch: not fetched again
        await authn.identify(bearer(signed(KEY_C, "ES256", user(), kid="c")))
    assert jwks_server.fetches == 2


async def test_an_unreachable_jwks_url_rejects_tokens_instead_of_failing_the_gateway() -> None:
    authn = Authenticator(Settings(jwt_secret=SECRET, jwks="http://127.0.0.1:9/jwks.json"),
                          clock=lambda: NOW)
    with pytest.raises(GatewayError) as caught:
        await authn.identify(bearer(signed(KEY_A, "RS256", user(), kid="a")))
    assert caught.value.status == 401
    assert (await authn.identify(bearer(hs(user())))).role == "authenticated"
