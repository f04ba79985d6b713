"""GraphQL over HTTP media types: what the client accepts decides the response's type and status.

In:  the request's ``Accept`` and ``Content-Type`` headers.
Out: ``negotiate(accept)`` -> ``Media``: the response content type and the status of a request
     error (a document that does not parse or validate, variables that do not coerce);
     ``body_type(content_type)`` -> how a POST body is read, or None for an unsupported one (400).

As the GraphQL-over-HTTP specification (and its ``graphql-http`` audit) asks:

    Accept                                   content type                        request error
    application/graphql-response+json        application/graphql-response+json   400
    application/json (and not the above)     application/json                    200, errors in the body
    absent, */*, anything else               application/json                    400 (clients of earlier
                                                                                 versions rely on it)

Credential failures (401/403), a mutation over GET (405) and malformed requests (400) keep
their statuses under every type.
"""

from __future__ import annotations

from dataclasses import dataclass

GRAPHQL_RESPONSE = "application/graphql-response+json"


@dataclass(frozen=True)
class Media:
    content_type: str  # the response's Content-Type
    request_error_status: int  # status of a document/variables error


AS_GRAPHQL_RESPONSE = Media(GRAPHQL_RESPONSE + "; charset=utf-8", 400)
AS_JSON = Media("application/json; charset=utf-8", 200)
DEFAULT = Media("application/json; charset=utf-8", 400)


def negotiate(accept: str | None) -> Media:
    types = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    if GRAPHQL_RESPONSE in types:
        return AS_GRAPHQL_RESPONSE
    if "application/json" in types:
        return AS_JSON
    return DEFAULT


# media type of a POST body -> how it is read
BODY_TYPES = {"application/json": "json", "application/graphql": "graphql", "application/graphql+json": "json"}


def body_type(content_type: str | None) -> str | None:
    """``"json"`` or ``"graphql"`` for a supported POST body type; None for a missing or other one."""
    return BODY_TYPES.get((content_type or "").split(";")[0].strip().lower())
