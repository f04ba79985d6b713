"""The gateway's secrets: the JWT signing secret, the admin API key and the login role's password.

In:  ``Settings`` (``jwt_secret`` / ``api_key`` / ``authenticator_password`` from the environment,
     ``data_dir``).
Out: ``Settings`` with all three set (the password only when the gateway manages its login role,
     i.e. ``authenticator_url`` is unset). What the environment leaves unset is read from
     ``<data_dir>/keys.json``, or generated once and written there (mode 0600), so a restart,
     the CLI's ``token`` command and every worker process agree on the same keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from .settings import Settings

KEYS_FILE = "keys.json"
MIN_SECRET_LENGTH = 32  # HS256 wants at least 256 bits of key
API_KEY_PATTERN = re.compile(r"^ik_[0-9a-f]{64}$")  # what generate_api_key makes
# what an API_KEY from the environment must look like: the prefix and 32+ random URL-safe characters
GIVEN_API_KEY = re.compile(r"ik_[A-Za-z0-9_-]{32,}")


def generate_jwt_secret() -> str:
    return secrets.token_urlsafe(48)  # 64 characters


def generate_api_key() -> str:
    return "ik_" + secrets.token_hex(32)


def generate_password() -> str:
    return secrets.token_urlsafe(32)  # 43 URL-safe characters: nothing to escape in a URL


# field -> (generator, check for a stored value). A stored value that fails its check is replaced.
GENERATED = {
    "jwt_secret": (generate_jwt_secret, lambda v: isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH),
    "api_key": (generate_api_key, lambda v: isinstance(v, str) and bool(API_KEY_PATTERN.match(v))),
    "authenticator_password": (generate_password, lambda v: isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH),
}


def keys_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / KEYS_FILE


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable keys file: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a readable keys file: expected a JSON object")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _write_new(path: Path, keys: dict[str, str], replace_existing: bool) -> bool:
    """Write ``keys`` to ``path`` with mode 0600; False when another process got there first.

    The file is written completely under a temporary name and then linked into place, so a
    concurrent reader never sees half a file and two first starts cannot pick different keys.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(keys, f, indent=2)
            f.write("\n")
        if replace_existing:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _stored_keys(path: Path) -> dict[str, str]:
    """The keys file's contents, generating and writing whatever is missing or unusable."""
    # decided before reading: a file that appears after this check (a concurrent first start)
    # is never replaced, since the link below then fails and its keys are read instead
    existed = path.exists()
    stored = _read(path)
    missing = [field for field, (_, valid) in GENERATED.items() if not valid(stored.get(field))]
    if not missing:
        return stored
    updated = dict(stored)
    for field in missing:
        updated[field] = GENERATED[field][0]()
    if _write_new(path, updated, replace_existing=existed):
        return updated
    return _read(path)  # a concurrent first start wrote the file: use its keys


def _needed(settings: Settings) -> list[str]:
    """The secrets neither the environment nor the caller gave."""
    needed = [f for f in ("jwt_secret", "api_key") if getattr(settings, f) is None]
    if settings.authenticator_url is None and settings.authenticator_password is None:
        needed.append("authenticator_password")
    return needed


def ensure_keys(settings: Settings) -> Settings:
    """``settings`` with every secret it needs set (environment first, then the data dir)."""
    if settings.jwt_secret is not None and len(settings.jwt_secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"JWT_SECRET must be at least {MIN_SECRET_LENGTH} characters long")
    if settings.api_key is not None and not GIVEN_API_KEY.fullmatch(settings.api_key):
        raise ValueError("API_KEY must be ik_ followed by at least 32 random letters, digits, - or _ "
                         "(make one with: echo ik_$(openssl rand -hex 32)), or unset to use a generated one")
    needed = _needed(settings)
    if not needed:
        return settings
    stored = _stored_keys(keys_path(settings))
    found: dict[str, Any] = {field: stored[field] for field in needed}
    return replace(settings, **found)
