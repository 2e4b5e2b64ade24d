"""Keyless Redis: sign in to Azure Managed Redis with an Entra token (``REDIS_SIGN_IN=entra``).

The pod's Kubernetes workload identity (the webhook injects ``AZURE_CLIENT_ID``,
``AZURE_TENANT_ID``, ``AZURE_FEDERATED_TOKEN_FILE`` and ``AZURE_AUTHORITY_HOST``) is exchanged
for a token of the Redis resource by azure-identity's ``WorkloadIdentityCredential`` alone:
never the chain of DefaultAzureCredential, whose managed-identity step would ask the node's
metadata endpoint for the node's identity; redis-entraid renews it in the background before it expires (at 70 % of its
life) and redis-py re-authenticates the pooled connections with each new one. A connection
the server closed meanwhile reconnects with the current token: every new connection asks
the provider, as with a key. The Redis user is the identity's object ID (the token's ``oid``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Mapping
from typing import Any

from redis.auth.err import RequestTokenErr, TokenRenewalErr
from redis.auth.idp import IdentityProviderInterface
from redis.auth.token_manager import RetryPolicy, TokenManagerConfig
from redis.credentials import StreamingCredentialProvider
from redis.exceptions import AuthenticationError

#: The scope of an Entra token for Azure Managed Redis and Azure Cache for Redis.
REDIS_SCOPE = "https://redis.azure.com/.default"
#: What the workload identity webhook sets in a labelled pod; without them there is no token.
WORKLOAD_IDENTITY_ENV = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")
#: Renew at 70 % of a token's life (about 42 minutes into an hour's token); a failed
#: request is tried 3 times, 100 ms apart, then again at the next refresh.
TOKEN_MANAGER = TokenManagerConfig(0.7, 0, 10_000, RetryPolicy(3, 100))


class TokenErrorsAsAuth(StreamingCredentialProvider):
    """redis-entraid raises its own ``RequestTokenErr`` when no token comes (Entra unreachable,
    the federation or the assignment missing), which no Redis client or app loop knows: the
    worker died of it ("Unrecoverable error"). Here it is what a refused key is, an
    :class:`AuthenticationError` (reason ``auth``: live, not ready, retried), naming the cause's
    type, never a token."""

    def __init__(self, inner: StreamingCredentialProvider):
        self._inner = inner

    @staticmethod
    def _refused(exc: Exception) -> AuthenticationError:
        cause = exc.__cause__ or exc
        return AuthenticationError(f"no Entra token for the workload identity ({type(cause).__name__})")

    def get_credentials(self) -> Any:
        try:
            return self._inner.get_credentials()
        except (RequestTokenErr, TokenRenewalErr) as exc:
            raise self._refused(exc) from None

    async def get_credentials_async(self) -> Any:
        """The async clients' (the cache API): the same token, fetched in a worker thread.
        redis-entraid's async path asks the identity provider on the event loop, and
        azure-identity's request is blocking: a slow or unreachable Entra froze the whole
        cache API, ``/healthz`` included (measured: the probe timed out)."""
        return await asyncio.to_thread(self.get_credentials)

    def on_next(self, callback: Any) -> None:
        # An async client's re-auth callback is a coroutine function, which the token
        # manager's thread cannot await: those clients take the new token when they next
        # connect (the service closes a connection whose token expired).
        if not inspect.iscoroutinefunction(callback):
            self._inner.on_next(callback)

    def on_error(self, callback: Any) -> None:
        if not inspect.iscoroutinefunction(callback):
            self._inner.on_error(callback)

    def is_streaming(self) -> bool:
        return self._inner.is_streaming()


def missing_workload_identity(environ: Mapping[str, str]) -> list[str]:
    """The webhook's variables absent from ``environ`` (``[]``: the pod is labelled right)."""
    return [name for name in WORKLOAD_IDENTITY_ENV if not environ.get(name)]


def entra_credentials(identity_provider: IdentityProviderInterface | None = None) -> StreamingCredentialProvider:
    """The credential provider of ``REDIS_SIGN_IN=entra``: tokens of the pod's workload identity,
    or from ``identity_provider`` when one is given."""
    from redis_entraid.cred_provider import EntraIdCredentialsProvider

    if identity_provider is None:
        from azure.identity import WorkloadIdentityCredential
        from redis_entraid.identity_provider import DefaultAzureCredentialProvider

        # azure-identity logs every request at INFO and a token failure over many lines: the
        # apps report a refused token once, as reason auth (apps/common/redis_errors.py).
        for name in ("azure.identity", "azure.core.pipeline.policies.http_logging_policy"):
            logging.getLogger(name).setLevel(logging.ERROR)
        # redis-entraid's provider for any azure-identity credential (named for its default one).
        # No retries of its own: the token manager's (3, 100 ms apart) and the apps' loops retry.
        identity_provider = DefaultAzureCredentialProvider(WorkloadIdentityCredential(retry_total=0),
                                                           (REDIS_SCOPE,))
    return TokenErrorsAsAuth(EntraIdCredentialsProvider(identity_provider, TOKEN_MANAGER))
