"""gateway: the InsForge Database API (PostgREST-style REST) and GraphQL over one PostgreSQL catalog."""

__version__ = "0.1.0"
