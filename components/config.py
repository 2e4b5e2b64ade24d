"""The stack configuration: one pydantic model, validated once, before any resource.

Keys are flat camelCase under the project namespace (``redis-keda-platform:<key>``),
exactly as they appear in ``stacks/Pulumi.<stack>.yaml`` and in ``Pulumi.yaml``'s
``config:`` block. ``load_config`` is shared by ``__main__.py`` (raw values from the
Pulumi engine) and ``tools/render.py`` (raw values from the stack file).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import address_plan, aks_baseline, connections, versions
from components.limits import (
    DEAD_LETTER_MAX_ENTRY_BYTES,
    WORKER_HARD_LIMIT_MARGIN,
    hard_time_limit,
    redis_maxmemory_bytes,
)

PROJECT = "redis-keda-platform"
#: A full dead-letter list may take at most this share of the in-cluster Redis' maxmemory.
DEAD_LETTER_MAX_SHARE = 0.10

# DNS-1123 label (namespaces, names).
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# An image reference pinned by tag and/or digest: [registry/]repo[:tag][@sha256:...]
_IMAGE_REF = re.compile(
    r"^(?P<repo>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)$")
_K8S_VERSION = re.compile(r"^1\.[0-9]{2}(\.[0-9]+)?$")
# Azure Managed Redis SKUs (the Enterprise_*/EnterpriseFlash_* tiers of the same API are not AMR).
_MANAGED_REDIS_SKU = re.compile(r"^(Balanced_B|MemoryOptimized_M|ComputeOptimized_X|FlashOptimized_A)[0-9]+$")


class ConfigError(ValueError):
    """Invalid stack configuration. ``str()`` is one line per problem, naming the key."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(
            "; ".join(f"{PROJECT}:{key}: {msg}" if key else msg for key, msg in problems)
        )


class PlatformConfig(BaseModel):
    """Every stack config key, its type, its default. Secure, working defaults."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        coerce_numbers_to_str=True,
        str_strip_whitespace=True,
    )

    # --- where -----------------------------------------------------------------
    target: Literal["aks", "kind"] = Field("kind", description="Where to deploy: `kind` (existing local cluster, in-cluster Redis) or `aks` (Azure: AKS + an Azure Redis service, see `azureRedis`).")
    namespace: str = Field("platform", description="Kubernetes namespace of the apps and (in-cluster) Redis.")
    keda_namespace: str = Field("keda", description="Kubernetes namespace of the KEDA release.")
    kubeconfig_context: str = Field("kind-redis-keda", description="kind: kubeconfig context of the existing cluster.")
    location: str = Field("westeurope", description="aks: Azure region.")
    kubernetes_version: str = Field(versions.AKS_KUBERNETES_VERSION, description="aks: pinned Kubernetes version of the AKS control plane and node pools.")
    system_node_vm_size: str = Field("Standard_D2s_v5", description="aks: VM size of the system node pool.")
    system_node_count: int = Field(2, ge=1, le=10, description="aks: nodes in the system node pool.")
    user_node_vm_size: str = Field("Standard_D4s_v5", description="aks: VM size of the user (workload) node pool.")
    user_node_min_count: int = Field(1, ge=0, le=100, description="aks: cluster-autoscaler minimum of the user node pool.")
    user_node_max_count: int = Field(5, ge=1, le=100, description="aks: cluster-autoscaler maximum of the user node pool.")
    create_acr: bool = Field(False, description="aks: create an Azure Container Registry and grant the kubelet identity AcrPull.")
    deployer_principal_type: Literal["User", "ServicePrincipal", "Group"] = Field("User", description="aks: principalType of the identity running `pulumi up` (`User` from a laptop, `ServicePrincipal` from CI), set on every role assignment made for it.")
    azure_redis: Literal["managed", "classic"] = Field("managed", description="aks: `managed` = Azure Managed Redis (redisEnterprise, NoCluster, TLS on 10000; the successor, creatable by any tenant); `classic` = Azure Cache for Redis (TLS on 6380; retired 2028-09-30, new caches only for tenants that had one before 2026-04-01).")
    redis_managed_sku: str = Field(versions.AZURE_MANAGED_REDIS_SKU, description="aks, azureRedis=managed: Azure Managed Redis SKU (Balanced_B0 = 0.5 GB, the smallest; MemoryOptimized_M*, ComputeOptimized_X*, FlashOptimized_A* for more).")
    redis_sku: Literal["Basic", "Standard", "Premium"] = Field("Standard", description="aks, azureRedis=classic: Azure Cache for Redis SKU (Standard = replicated, SLA).")
    redis_capacity: int = Field(1, ge=0, le=6, description="aks, azureRedis=classic: Azure Cache for Redis size within the SKU family (C0..C6 / P1..P5).")
    redis_public_network_access: Literal["Enabled", "Disabled"] = Field("Disabled", description="aks: public network access of the Azure Redis. `Disabled`: reachable only through its private endpoint in the cluster's VNet. `Enabled` (escape hatch) also exposes its public endpoint to the whole internet, guarded by TLS and the access key only.")
    vnet_address_space: str = Field(address_plan.DEFAULT_VNET, description="aks: address space of the VNet the stack creates (must not overlap the AKS service CIDR 10.0.0.0/16 or pod CIDR 10.244.0.0/16).")
    node_subnet_cidr: str = Field(address_plan.DEFAULT_NODE_SUBNET, description="aks: the AKS node subnet, inside vnetAddressSpace (Azure CNI overlay: pods do not take VNet addresses).")
    endpoint_subnet_cidr: str = Field(address_plan.DEFAULT_ENDPOINT_SUBNET, description="aks: the private endpoint subnet, inside vnetAddressSpace; also the only egress the NetworkPolicies allow to Redis. With nodeSubnetId/endpointSubnetId: the real CIDR of endpointSubnetId (required).")
    node_subnet_id: str = Field("", description="aks, bring-your-own network: resource ID of an existing subnet for the nodes (with endpointSubnetId; no VNet is created).")
    endpoint_subnet_id: str = Field("", description="aks, bring-your-own network: resource ID of an existing subnet, in the node subnet's VNet, for the Redis private endpoint.")
    api_server_access: Literal["authorized", "private"] = Field("authorized", description="aks: who reaches the Kubernetes API server. `authorized`: its public endpoint, from `apiServerAuthorizedIpRanges` only; `private`: a private cluster, reachable from the cluster's VNet (and networks peered or linked to it) only, so `pulumi up` must run there too (docs/security.md#api-server-access). Run command is disabled either way.")
    api_server_authorized_ip_ranges: str = Field("", description="aks, apiServerAccess=authorized (required): comma-separated IPv4 CIDRs allowed to reach the API server: the public egress of whoever runs `pulumi up` and kubectl, and CI's (at most 200; the cluster's own outbound IP is added by AKS).")
    cluster_tier: Literal["Free", "Standard", "Premium"] = Field("Standard", description="aks: AKS pricing tier. `Standard`: the financially backed API server SLA and a control plane that scales with the cluster (the baseline's); `Free`: no SLA, for trials.")
    availability_zones: str = Field("", description="aks: comma-separated availability zones of both node pools, e.g. `1,2,3` (the region must have zones); empty = no zones. AKS cannot change the zones of an existing node pool: a cluster created without them keeps `\"\"`.")
    maintenance_day: Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] = Field("Sunday", description="aks: the weekly day of the planned maintenance windows: cluster upgrades (autoUpgrade patch channel) and node-OS image upgrades run only then.")
    maintenance_start_hour: int = Field(2, ge=0, le=23, description="aks: the hour (UTC) the maintenance windows start; each lasts 4 hours, node-OS upgrades start 4 hours after cluster upgrades.")
    log_retention_days: int = Field(30, ge=30, le=730, description="aks: retention of the Log Analytics workspace that receives the cluster's audit log (kube-audit-admin, guard), the container logs and the Redis, ACR and private endpoint diagnostics.")
    defender_for_containers: bool = Field(False, description="aks: enable Microsoft Defender for Containers: the cluster's Defender sensor and the subscription's Containers plan (Standard). The plan is subscription-wide and billed per vCore of every cluster in the subscription; `pulumi destroy` leaves it on.")
    acr_public_network_access: Literal["Enabled", "Disabled"] = Field("Enabled", description="aks, createAcr: `Disabled` makes the registry Premium with a private endpoint in the endpoint subnet (pods pull through it; push from inside the VNet: docs/images.md#a-private-registry); `Enabled` keeps it reachable from the internet with Entra sign-in only (admin user off).")
    redis_entra_auth: bool = Field(True, description="aks, azureRedis=managed: the worker, sweeper, producer and cache API sign in to Redis with Entra tokens of their own workload identities (a user-assigned identity per ServiceAccount, federated with the cluster's OIDC issuer, given the database's access policy); no app pod mounts or names the access key. KEDA's scaler and redis_exporter keep the key (they cannot use Entra for Redis yet). false: the apps use the key too. Azure Cache for Redis and the in-cluster Redis always use the key.")
    redis_storage_size: str = Field("1Gi", description="kind: size of the in-cluster Redis PersistentVolumeClaim.")
    redis_storage_class: str = Field("", description="kind: StorageClass of the Redis PVC; empty = the cluster default.")
    redis_memory_limit_mi: int = Field(512, ge=128, le=65536, description="kind: memory limit (MiB) of the in-cluster Redis; its maxmemory is (limit - 32) / 2 (room for the fork of an AOF rewrite), and the replica sidecar's limit follows from that maxmemory.")
    redis_db: int = Field(0, ge=0, le=15, description="Redis database index used by every app and the KEDA trigger.")
    redis_max_clients: int = Field(1000, ge=64, le=10000, description="kind: maxclients of the in-cluster Redis, set explicitly; the stack's connection maxima plus headroom must fit it (docs/infra.md#connection-budget). On aks the Azure size's documented limit applies.")

    # --- images ------------------------------------------------------------------
    cache_api_image: str = Field(versions.CACHE_API_IMAGE, description="Cache API image (pinned tag or digest).")
    worker_image: str = Field(versions.WORKER_IMAGE, description="Celery worker image (pinned tag or digest).")
    producer_image: str = Field(versions.PRODUCER_IMAGE, description="Producer image (pinned tag or digest).")
    redis_image: str = Field(versions.REDIS_IMAGE, description="kind: in-cluster Redis image (also the cache API replica sidecar).")
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field("IfNotPresent", description="imagePullPolicy of every app container (kind loads images locally: IfNotPresent).")

    # --- worker + KEDA -----------------------------------------------------------
    worker_mode: Literal["deployment", "job"] = Field("deployment", description="`deployment`: Deployment + ScaledObject; `job`: ScaledJob (each Job exits when idle).")
    queue_name: str = Field("celery", description="Celery queue = Redis list = KEDA listName.")
    list_length: int = Field(5, ge=1, description="KEDA target: queued tasks per worker replica.")
    activation_list_length: int = Field(0, ge=0, description="KEDA: scale from zero when the list is longer than this.")
    cooldown_seconds: int = Field(60, ge=0, description="KEDA ScaledObject cooldownPeriod before scaling to zero.")
    polling_interval_seconds: int = Field(5, ge=1, description="KEDA pollingInterval.")
    worker_min_replicas: int = Field(0, ge=0, description="Minimum worker replicas (0 = scale to zero).")
    worker_max_replicas: int = Field(10, ge=1, le=1000, description="Maximum worker replicas (deployment) or parallel Jobs (job).")
    worker_concurrency: int = Field(2, ge=1, le=32, description="WORKER_CONCURRENCY: prefork pool processes per worker pod (each adds one Redis connection to the pod's budget).")
    work_seconds_min: float = Field(1.0, ge=0, description="WORK_SECONDS_MIN: shortest simulated task.")
    work_seconds_max: float = Field(10.0, ge=0, description="WORK_SECONDS_MAX: longest simulated task.")
    visibility_timeout_seconds: int = Field(120, ge=1, description="CELERY_VISIBILITY_TIMEOUT: seconds before an unacked task is redelivered; must exceed ceil(workSecondsMax) + 5, the worker's hard time limit.")
    worker_idle_exit_seconds: int = Field(30, ge=1, description="job mode: WORKER_IDLE_EXIT_SECONDS, a Job's worker exits after this long idle.")
    job_scaling_strategy: Literal["default", "accurate", "eager"] = Field("accurate", description="job mode: ScaledJob scalingStrategy.strategy.")
    result_ttl_seconds: int = Field(86400, gt=0, description="RESULT_TTL_SECONDS: TTL of each task's users:<task id> result hash, set in the same write.")
    dead_letter_max_length: int = Field(1000, gt=0, description="DEAD_LETTER_MAX_LENGTH: the dead-letter list is trimmed to this many entries (each bounded by the worker).")

    # --- producer ----------------------------------------------------------------
    producer_rate: float = Field(0.0, ge=0, le=1000, description="Producer Deployment: steady tasks per second (`--forever --rate R`, at most 1000, the producer's flood guard); 0 = standby, the pod only runs bursts via `kubectl exec` (`--standby`).")
    producer_replicas: int = Field(1, ge=0, le=10, description="Producer Deployment replicas; 0 = no producer pod (`make load` then runs its burst in a one-off pod made from the Deployment's template).")
    producer_publish_max_memory_percent: int = Field(80, ge=10, le=95, description="PUBLISH_MAX_MEMORY_PERCENT: the producer publishes only while Redis's used memory is below this percent of its maxmemory (in-cluster: the maxmemory it sets; Azure: the SKU's size, passed as REDIS_MAXMEMORY_BYTES); the rest is kept for the workers to pop, record, ack and write results.")

    # --- cache API ---------------------------------------------------------------
    cache_api_min_replicas: int = Field(2, ge=1, description="Cache API HPA minReplicas (the PDB, maxUnavailable 1, lets one pod go at a time).")
    cache_api_max_replicas: int = Field(6, ge=1, le=100, description="Cache API HPA maxReplicas.")
    cache_api_cpu_target_percent: int = Field(70, ge=10, le=100, description="Cache API HPA average CPU utilization target.")
    cache_api_callers: Literal["labelled", "cluster"] = Field("labelled", description="Who may call the cache API on its port: `labelled` = pods labelled `redis-keda-platform/cache-api-client: \"true\"` (any namespace) and Prometheus; `cluster` = any pod in the cluster.")
    cache_api_read_path: Literal["central", "replica-sidecar"] = Field("central", description="`central`: reads from the Redis primary; `replica-sidecar`: a Redis replica per API pod (in-cluster Redis only).")
    cache_ttl_seconds: int = Field(300, ge=1, description="CACHE_TTL_SECONDS: TTL of cached entries.")
    cache_api_redis_max_connections: int = Field(16, ge=1, le=256, description="REDIS_MAX_CONNECTIONS: the bound of each cache API pod's Redis connection pool (the primary's; with replica-sidecar the reads go to the pod's own replica).")

    # --- monitoring ----------------------------------------------------------------
    monitoring: bool = Field(True, description="kube-prometheus-stack (Prometheus, Alertmanager, Grafana) in `monitoringNamespace`, redis_exporter, scrape objects, alerts and the platform dashboard; false = none of them.")
    monitoring_namespace: str = Field("monitoring", description="Kubernetes namespace of the kube-prometheus-stack release (with `monitoring` on).")

    # --- field validators ---------------------------------------------------------
    @field_validator("namespace", "keda_namespace", "monitoring_namespace")
    @classmethod
    def _dns_label(cls, v: str) -> str:
        if not _DNS_LABEL.match(v):
            raise ValueError(f"{v!r} is not a valid DNS-1123 label (lowercase alphanumerics and '-', max 63)")
        return v

    @field_validator("cache_api_image", "worker_image", "producer_image", "redis_image")
    @classmethod
    def _pinned_image(cls, v: str) -> str:
        m = _IMAGE_REF.match(v)
        if not m:
            raise ValueError(f"{v!r} is not a valid image reference")
        if not m.group("tag") and not m.group("digest"):
            raise ValueError(f"{v!r} is not pinned: give a tag or a digest")
        if m.group("tag") == "latest" and not m.group("digest"):
            raise ValueError(f"{v!r} uses the mutable tag 'latest': pin a version or a digest")
        return v

    @field_validator("queue_name")
    @classmethod
    def _queue_name(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        if any(c.isspace() for c in v) or len(v) > 200:
            raise ValueError(f"{v!r} must be a single token without whitespace (max 200 chars)")
        return v

    @field_validator("kubeconfig_context", "location", "system_node_vm_size", "user_node_vm_size")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v

    @field_validator("redis_managed_sku")
    @classmethod
    def _managed_sku(cls, v: str) -> str:
        if not _MANAGED_REDIS_SKU.match(v):
            raise ValueError(f"{v!r} is not an Azure Managed Redis SKU like 'Balanced_B0', 'MemoryOptimized_M10', "
                             "'ComputeOptimized_X5' or 'FlashOptimized_A250' (the Enterprise_* tiers are not Azure Managed Redis)")
        return v

    @field_validator("kubernetes_version")
    @classmethod
    def _k8s_version(cls, v: str) -> str:
        if not _K8S_VERSION.match(v):
            raise ValueError(f"{v!r} is not a Kubernetes version like '1.35' or '1.35.1'")
        return v

    @field_validator("redis_storage_size")
    @classmethod
    def _quantity(cls, v: str) -> str:
        if not _QUANTITY.match(v):
            raise ValueError(f"{v!r} is not a storage quantity like '1Gi'")
        return v

    @field_validator("work_seconds_min", "work_seconds_max", "producer_rate")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    # --- cross-field rules (message starts with the key) ---------------------------
    @model_validator(mode="after")
    def _cross_field(self) -> PlatformConfig:
        problems: list[tuple[str, str]] = []
        if self.worker_max_replicas < self.worker_min_replicas:
            problems.append(("workerMaxReplicas", f"{self.worker_max_replicas} is less than workerMinReplicas ({self.worker_min_replicas})"))
        if self.cache_api_max_replicas < self.cache_api_min_replicas:
            problems.append(("cacheApiMaxReplicas", f"{self.cache_api_max_replicas} is less than cacheApiMinReplicas ({self.cache_api_min_replicas})"))
        if self.user_node_max_count < self.user_node_min_count:
            problems.append(("userNodeMaxCount", f"{self.user_node_max_count} is less than userNodeMinCount ({self.user_node_min_count})"))
        if self.work_seconds_max < self.work_seconds_min:
            problems.append(("workSecondsMax", f"{self.work_seconds_max:g} is less than workSecondsMin ({self.work_seconds_min:g})"))
        if self.visibility_timeout_seconds <= self.worker_hard_time_limit:
            problems.append(("visibilityTimeoutSeconds", f"{self.visibility_timeout_seconds} must exceed workSecondsMax ({self.work_seconds_max:g}) + {WORKER_HARD_LIMIT_MARGIN} s, the worker's hard task time limit ({self.worker_hard_time_limit} s), or running tasks are redelivered (the worker refuses to start)"))
        if self.monitoring and self.monitoring_namespace in (self.namespace, self.keda_namespace):
            problems.append(("monitoringNamespace", f"{self.monitoring_namespace!r} must differ from namespace and kedaNamespace: the NetworkPolicies open metrics ports to this namespace only"))
        if self.cache_api_read_path == "replica-sidecar" and self.target == "aks":
            problems.append(("cacheApiReadPath", "'replica-sidecar' needs the in-cluster Redis (target kind); an Azure Redis service cannot be replicated into a pod: use 'central' on aks"))
        if self.target == "kind" and self.dead_letter_worst_case_bytes > self.redis_maxmemory_bytes * DEAD_LETTER_MAX_SHARE:
            problems.append(("deadLetterMaxLength", f"{self.dead_letter_max_length} entries x {DEAD_LETTER_MAX_ENTRY_BYTES} B "
                             f"could fill more than {DEAD_LETTER_MAX_SHARE:.0%} of the in-cluster Redis' maxmemory "
                             f"({self.redis_maxmemory_bytes} B, from redisMemoryLimitMi {self.redis_memory_limit_mi}): "
                             "lower it or raise redisMemoryLimitMi"))
        if self.target == "aks":
            problems += aks_baseline.api_access_problems(self.api_server_access, self.api_server_authorized_ip_ranges)
        problems += aks_baseline.zone_problems(self.availability_zones)
        problems += self._network_problems()
        problems += self._connection_problems()
        if problems:
            raise _CrossFieldError(problems)
        return self

    def _network_problems(self) -> list[tuple[str, str]]:
        """The aks address plan, checked with ``ipaddress`` (components/address_plan.py).
        Bring-your-own subnets: only what was given is checked, and endpointSubnetCidr must
        be given (the NetworkPolicy needs it; an ID says nothing offline)."""
        byo = bool(self.node_subnet_id or self.endpoint_subnet_id)
        given = self.model_fields_set
        problems = address_plan.network_problems(
            vnet_address_space=self.vnet_address_space if not byo or "vnet_address_space" in given else None,
            node_subnet_cidr=self.node_subnet_cidr if not byo or "node_subnet_cidr" in given else None,
            endpoint_subnet_cidr=self.endpoint_subnet_cidr,
            node_subnet_id=self.node_subnet_id,
            endpoint_subnet_id=self.endpoint_subnet_id,
            names={f: to_camel(f) for f in ("vnet_address_space", "node_subnet_cidr", "endpoint_subnet_cidr",
                                            "node_subnet_id", "endpoint_subnet_id")},
        )
        if byo and "endpoint_subnet_cidr" not in given:
            problems.append(("endpointSubnetCidr", "set it to the CIDR of endpointSubnetId: the NetworkPolicies "
                             "allow Redis egress to that range only, and a subnet ID cannot be resolved offline"))
        return problems

    def _connection_problems(self) -> list[tuple[str, str]]:
        """The connection budget (components/connections.py) against the target's client limit."""
        limit = self.redis_limit
        if limit is None:
            if self.azure_redis == "classic":
                return [("redisCapacity", f"Azure Cache for Redis {self.redis_sku} has no size {self.redis_capacity} "
                         "(Basic and Standard: 0..6, Premium: 1..5)")]
            return [("redisManagedSku", f"{self.redis_managed_sku!r} is not a size Azure Managed Redis documents "
                     "(Balanced_B0, B1, B3, B5, B10, ...; see docs/infra.md#connection-budget)")]
        problem = connections.budget_problem(self.connection_maxima, limit)
        return [problem] if problem else []

    # --- derived -----------------------------------------------------------------
    @property
    def connection_maxima(self) -> connections.Maxima:
        """What the connection budget reads of this stack."""
        return connections.Maxima(
            worker_mode=self.worker_mode, worker_max_replicas=self.worker_max_replicas,
            worker_concurrency=self.worker_concurrency, cache_api_read_path=self.cache_api_read_path,
            cache_api_max_replicas=self.cache_api_max_replicas,
            cache_api_redis_max_connections=self.cache_api_redis_max_connections,
            producer_replicas=self.producer_replicas, monitoring=self.monitoring)

    @property
    def redis_limit(self) -> connections.Limit | None:
        """The client (and memory) limit of the Redis this stack gets; None for a size Azure does not document."""
        if self.target == "kind":
            return connections.in_cluster_limit(self.redis_max_clients, self.redis_maxmemory_bytes)
        if self.azure_redis == "classic":
            return connections.azure_cache_limit(self.redis_sku, self.redis_capacity)
        return connections.azure_managed_limit(self.redis_managed_sku)

    @property
    def redis_maxmemory_bytes(self) -> int:
        """The in-cluster Redis' maxmemory (components/limits.py: the formula)."""
        return redis_maxmemory_bytes(self.redis_memory_limit_mi)

    @property
    def dead_letter_worst_case_bytes(self) -> int:
        """A full dead-letter list: DEAD_LETTER_MAX_LENGTH entries of the worker's largest size."""
        return self.dead_letter_max_length * DEAD_LETTER_MAX_ENTRY_BYTES

    @property
    def worker_hard_time_limit(self) -> int:
        """The worker's hard task time limit (apps/worker/settings.py: ceil(WORK_SECONDS_MAX) + 5)."""
        return hard_time_limit(self.work_seconds_max)


class _CrossFieldError(ValueError):
    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))


def config_keys() -> dict[str, Any]:
    """camelCase key -> pydantic FieldInfo, in declaration order."""
    return {info.alias or name: info for name, info in PlatformConfig.model_fields.items()}


#: Config namespaces the stack reads besides its own: the providers' settings
#: (``kubernetes:context``, ``azure-native:location``) and Pulumi's own.
PROVIDER_NAMESPACES = ("kubernetes", "azure-native", "random", "pulumi")


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _strip_namespace(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Our project's keys (``redis-keda-platform:x`` or bare ``x``), and a problem for every
    key in a namespace nobody reads: a typo there (``redis-keda-platfrom:workerMode``) would
    otherwise deploy the default silently. Provider namespaces pass (not ours to check)."""
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in raw.items():
        ns, sep, bare = key.rpartition(":")
        if not sep:
            out[key] = value
        elif ns == PROJECT:
            out[bare] = value
        elif ns not in PROVIDER_NAMESPACES:
            problems.append(("", f"{key}: unknown config namespace {ns!r}{_did_you_mean(ns, (PROJECT, *PROVIDER_NAMESPACES))}: "
                             f"this stack reads {PROJECT}:<key> (and the settings of {', '.join(PROVIDER_NAMESPACES)})"))
    return out, problems


def load_config(raw: Mapping[str, Any]) -> PlatformConfig:
    """Validate raw stack config. Raises ConfigError naming every bad key."""
    data, problems = _strip_namespace(raw)
    try:
        config = PlatformConfig.model_validate(data)
    except ValidationError as exc:
        known = sorted(f.alias or name for name, f in PlatformConfig.model_fields.items())
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append((loc, f"unknown config key{_did_you_mean(loc, known)} "
                                 "(Pulumi.yaml lists the known keys)"))
                continue
            ctx_err = err.get("ctx", {}).get("error")
            if isinstance(ctx_err, _CrossFieldError):
                problems.extend(ctx_err.problems)
                continue
            msg = err["msg"].removeprefix("Value error, ")
            problems.append((loc, f"{msg} (got {err.get('input')!r})" if err["type"] != "value_error" else msg))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def raw_pulumi_config() -> dict[str, Any]:
    """Every config value the Pulumi engine passed to this program, keyed
    ``namespace:key``. pulumi.Config can only *get* named keys; to reject unknown keys we
    need them all: the engine hands them to the language host, which stores them in the
    runtime's config map (older hosts: the PULUMI_CONFIG env var, read here too)."""
    from pulumi.runtime import config as runtime_config

    merged: dict[str, Any] = dict(runtime_config.get_config_env())
    merged.update(runtime_config.CONFIG.get())
    return merged


def pulumi_type(annotation: Any) -> str:
    """Pulumi project config types: string | integer | boolean (floats travel as strings)."""
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    return "string"


def pulumi_config_block() -> dict[str, dict[str, Any]]:
    """What Pulumi.yaml's ``config:`` must declare (a test keeps them equal)."""
    block: dict[str, dict[str, Any]] = {}
    for key, info in config_keys().items():
        t = pulumi_type(info.annotation)
        default = info.default
        if t == "string":
            default = f"{default:g}" if isinstance(default, float) else str(default)
        block[key] = {"type": t, "description": info.description, "default": default}
    return block
