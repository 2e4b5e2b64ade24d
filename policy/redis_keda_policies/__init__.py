"""redis-keda-platform's security baseline (docs/security.md) as Pulumi policies.

Every policy is a plain ``pulumi_policy`` object: tests/infra/test_policy_pack.py calls each validation
directly on every resource the stack renders, and on mutated copies. ``PolicyPack`` is
constructed only in ``policy/__main__.py`` (constructing it starts a gRPC server).
"""

from redis_keda_policies.aks_baseline import AKS_BASELINE_POLICIES
from redis_keda_policies.azure import AZURE_POLICIES
from redis_keda_policies.kubernetes import KUBERNETES_POLICIES
from redis_keda_policies.pods import POD_POLICIES

PACK_NAME = "redis-keda-platform-baseline"
POLICIES = [*POD_POLICIES, *KUBERNETES_POLICIES, *AZURE_POLICIES, *AKS_BASELINE_POLICIES]

__all__ = ["PACK_NAME", "POLICIES"]
