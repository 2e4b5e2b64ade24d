"""Keyless Redis: sign in to Azure Managed Redis with an Entra token (``REDIS_SIGN_IN=entra``).

The pod's Kubernetes workload identity (the webhook injects ``AZURE_CLIENT_ID``,
``AZURE_TENANT_ID`` and ``AZURE_FEDERATED_TOKEN_FILE``) is exchanged for a token of the
Redis resource; redis-entraid renews it in the background before it expires (at 70 % of its
life) and redis-py re-authenticates the pooled connections with each new one. A connection
the server closed meanwhile reconnects with the current token: every new connection asks
the provider, as with a key. The Redis user is the identity's object ID (the token's ``oid``).
"""

from __future__ import annotations

from redis.auth.idp import IdentityProviderInterface
from redis.auth.token_manager import RetryPolicy, TokenManagerConfig
from redis.credentials import StreamingCredentialProvider

#: The scope of an Entra token for Azure Managed Redis and Azure Cache for Redis.
REDIS_SCOPE = "https://redis.azure.com/.default"
#: Renew at 70 % of a token's life (about 42 minutes into an hour's token); a failed
#: request is tried 3 times, 100 ms apart, then again at the next refresh.
TOKEN_MANAGER = TokenManagerConfig(0.7, 0, 10_000, RetryPolicy(3, 100))


def entra_credentials(identity_provider: IdentityProviderInterface | None = None) -> StreamingCredentialProvider:
    """The credential provider of ``REDIS_SIGN_IN=entra``: tokens from the workload identity
    (azure-identity's DefaultAzureCredential, which picks the federated token up), or from
    ``identity_provider`` when one is given."""
    from redis_entraid.cred_provider import EntraIdCredentialsProvider

    if identity_provider is None:
        from azure.identity import DefaultAzureCredential
        from redis_entraid.identity_provider import DefaultAzureCredentialProvider

        identity_provider = DefaultAzureCredentialProvider(DefaultAzureCredential(), (REDIS_SCOPE,))
    return EntraIdCredentialsProvider(identity_provider, TOKEN_MANAGER)
