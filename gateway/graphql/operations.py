"""Which documents may run, and how a client names them: persisted queries and the allow-list.

Used by ``view.py`` for every HTTP request (batched ones included).

In:  a request's ``query`` (possibly absent) and ``extensions``, the caller's ``Identity``, and
     ``Settings`` (``graphql_allowlist``, a file of allowed documents).
Out: ``PersistedQueries.resolve`` -> the document text to run (Apollo's automatic persisted
     queries: a hash alone runs the document registered under it, a hash with its document
     registers it); ``AllowList.check`` refuses a document that is not listed, for every caller but
     the admin.

Automatic persisted queries (``extensions.persistedQuery = {version: 1, sha256Hash}``): a client
first sends only the hash; an unknown hash answers ``PersistedQueryNotFound`` (code
``PERSISTED_QUERY_NOT_FOUND``), and the client retries with the document, which is registered
once its SHA-256 matches the hash. The store is per process and bounded; a miss only costs the
client one retry. Documents listed in the allow-list are known by hash from the start.

The allow-list file is JSON: an array of documents, or an object mapping names (or hashes) to
documents, as Apollo's and Relay's persisted-query manifests are. A document matches by the
SHA-256 of its exact text.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ..errors import GatewayError
from ..identity import Identity

STORE_SIZE = 4096  # documents registered per process (least recently used out)


def digest(query: str) -> str:
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


def not_found() -> GatewayError:
    # Apollo's clients look for this message and code (extensions.code), then resend the document
    return GatewayError(400, "INVALID_QUERY", "PersistedQueryNotFound", code="PERSISTED_QUERY_NOT_FOUND",
                        next_actions="Send the document again with its hash, so the gateway can register it")


class AllowList:
    """Documents non-admin callers may run, by the SHA-256 of their text; empty: every document."""

    def __init__(self, documents: Mapping[str, str] | None = None) -> None:
        self.documents: dict[str, str] = dict(documents or {})  # hash -> text

    @classmethod
    def load(cls, path: str | None) -> AllowList:
        """The list in ``path`` (see the module doc); no path: no list."""
        if not path:
            return cls()
        try:
            raw: Any = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"GATEWAY_GRAPHQL_ALLOWLIST: {path} is not a readable JSON file: {exc}") from exc
        texts = list(raw.values()) if isinstance(raw, dict) else raw
        if not isinstance(texts, list) or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError(f"GATEWAY_GRAPHQL_ALLOWLIST: {path} must hold an array of documents or an object "
                             "whose values are documents")
        return cls({digest(t): t for t in texts})

    @property
    def active(self) -> bool:
        return bool(self.documents)

    def check(self, query: str, identity: Identity) -> None:
        """403 unless the document is listed (or the caller is the admin, or there is no list)."""
        if self.active and not identity.is_admin and digest(query) not in self.documents:
            raise GatewayError(403, "FORBIDDEN", "This operation is not in the allow-list",
                               next_actions="Run one of the operations the allow-list file names, or ask an admin "
                                            "to add this one")


class PersistedQueries:
    """Apollo's automatic persisted queries, over a bounded per-process store."""

    def __init__(self, allow: AllowList | None = None, size: int = STORE_SIZE) -> None:
        self.size = size
        self.known: OrderedDict[str, str] = OrderedDict()
        self.listed: dict[str, str] = dict(allow.documents) if allow else {}

    def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The document to run; None when the request names none at all (the caller's 400)."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            return query
        if not isinstance(persisted, dict) or persisted.get("version") != 1 or not isinstance(
                persisted.get("sha256Hash"), str):
            raise GatewayError(400, "INVALID_QUERY", "extensions.persistedQuery must be {version: 1, sha256Hash}",
                               code="PERSISTED_QUERY_INVALID")
        wanted = persisted["sha256Hash"].lower()
        if query:
            if digest(query) != wanted:
                raise GatewayError(400, "INVALID_QUERY", "provided sha does not match query",
                                   code="PERSISTED_QUERY_HASH_MISMATCH")
            self.known[wanted] = query
            self.known.move_to_end(wanted)
            while len(self.known) > self.size:
                self.known.popitem(last=False)
            return query
        found = self.listed.get(wanted) or self.known.get(wanted)
        if found is None:
            raise not_found()
        if wanted in self.known:
            self.known.move_to_end(wanted)
        return found
