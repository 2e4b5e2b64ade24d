"""The policy pack's entry point: Pulumi runs this (``python -m pulumi.policy``) with this
folder on ``sys.path``. Constructing ``PolicyPack`` starts its gRPC server, so it happens
only here; the policies themselves are importable from ``redis_keda_policies``."""

from pulumi_policy import PolicyPack
from redis_keda_policies import PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=POLICIES)
