"""/metrics is for admins, and tokens that never expire are refused (gateway/observe.py, auth.py).

Over HTTP against the real database: every credential shape against ``/metrics``, and user,
admin and anon tokens without ``exp`` with and without ``GATEWAY_JWT_ALLOW_NO_EXP``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
from support import JWT_SECRET, Running, assert_error, running_app

from gateway import settings as settings_mod
from gateway.auth import anon_key, sign_token

USER = "8d0e5c62-3b6f-4f53-9a55-3c8a4c4b1d11"
PROBE = "/api/database/openapi.json"  # any path that asks for a credential


def bearer(claims: dict[str, object], ttl: int | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign_token(JWT_SECRET, claims, ttl)}"}


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with running_app(pg_url) as running:
        yield running


async def test_metrics_without_a_credential_is_401(gw: Running) -> None:
    r = await gw.client.get("/metrics")
    assert_error(r, 401, "AUTH_INVALID_CREDENTIALS")
    assert "gateway_http_requests_total" not in r.text


@pytest.mark.parametrize("who", ["anon_key", "anon_jwt", "user"])
async def test_metrics_with_a_non_admin_credential_is_403(gw: Running, who: str) -> None:
    headers = {"anon_key": gw.anon, "anon_jwt": {"Authorization": f"Bearer {anon_key(JWT_SECRET)}"},
               "user": gw.user()}[who]
    r = await gw.client.get("/metrics", headers=headers)
    assert_error(r, 403, "FORBIDDEN")
    assert "gateway_http_requests_total" not in r.text


@pytest.mark.parametrize("who", ["x_api_key", "bearer_api_key", "admin_jwt"])
async def test_metrics_with_the_admin_credential_is_served(gw: Running, who: str) -> None:
    headers = {"x_api_key": gw.admin, "bearer_api_key": {"Authorization": f"Bearer {gw.settings.api_key}"},
               "admin_jwt": bearer({"role": "project_admin"}, 600)}[who]
    r = await gw.client.get("/metrics", headers=headers)
    assert r.status_code == 200 and "gateway_http_requests_total" in r.text


@pytest.mark.parametrize("claims", [{"sub": USER, "role": "authenticated"}, {"sub": USER},
                                    {"role": "project_admin"}], ids=["user", "user_without_role", "admin"])
async def test_a_token_without_exp_is_refused_for_users_and_admins(gw: Running, claims: dict[str, object]) -> None:
    r = await gw.client.get(PROBE, headers=bearer(claims, None))
    body = assert_error(r, 401, "AUTH_UNAUTHORIZED", "PGRST303")
    assert "exp" in body["details"]


async def test_the_same_tokens_with_exp_are_accepted(gw: Running) -> None:
    for claims in ({"sub": USER, "role": "authenticated"}, {"role": "project_admin"}):
        assert (await gw.client.get(PROBE, headers=bearer(claims, 600))).status_code == 200


async def test_the_printed_anon_key_has_no_exp_and_stays_accepted(gw: Running) -> None:
    token = anon_key(JWT_SECRET)
    assert "exp" not in orjson.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    r = await gw.client.get(PROBE, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200


async def test_an_expired_user_token_is_still_refused(gw: Running) -> None:
    token = sign_token(JWT_SECRET, {"sub": USER, "role": "authenticated", "exp": int(time.time()) - 3600}, None)
    assert_error(await gw.client.get(PROBE, headers={"Authorization": f"Bearer {token}"}), 401,
                 "AUTH_UNAUTHORIZED", "PGRST303")


async def test_allow_no_exp_accepts_user_tokens_without_exp(pg_url: str) -> None:
    async with running_app(pg_url, jwt_allow_no_exp=True) as running:
        r = await running.client.get(PROBE, headers=bearer({"sub": USER, "role": "authenticated"}, None))
        assert r.status_code == 200, r.text


def test_allow_no_exp_is_read_from_the_environment_and_off_by_default() -> None:
    assert settings_mod.load({}).jwt_allow_no_exp is False
    assert settings_mod.load({"GATEWAY_JWT_ALLOW_NO_EXP": "true"}).jwt_allow_no_exp is True
