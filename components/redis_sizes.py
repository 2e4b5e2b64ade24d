"""How much memory each Azure Redis size gives data, for the producer's backpressure.

Azure Managed Redis does not report ``maxmemory`` to clients (``INFO`` has no such field
there and ``CONFIG`` is blocked; Microsoft Q&A, "Azure Managed Redis does not show maxmemory
in the result of the info command", 2025-10), so the stack passes the size it chose as
``REDIS_MAXMEMORY_BYTES`` (apps/producer/admission.py). Azure Cache for Redis reports
``maxmemory``, and the producer takes the smaller of the two.

Sizes are Azure's published cache sizes, in decimal GB (10^9 bytes: the smaller reading of
"GB", so the producer holds early rather than late). Azure Managed Redis counts the replica
of a high-availability database outside this figure ("choose the SKU by the dataset size").
A SKU not listed here gets no value: the producer then uses what ``INFO`` reports (nothing
on Azure Managed Redis: no memory backpressure, logged at start) and still waits out every
``OOM`` refusal.
"""

from __future__ import annotations

GB = 10**9

#: Azure Managed Redis SKU -> memory for data (bytes). Flash tiers (RAM + NVMe) are left out.
MANAGED_REDIS_BYTES: dict[str, int] = {
    "Balanced_B0": GB // 2, "Balanced_B1": 1 * GB, "Balanced_B3": 3 * GB, "Balanced_B5": 6 * GB,
    "Balanced_B10": 12 * GB, "Balanced_B20": 24 * GB, "Balanced_B50": 60 * GB, "Balanced_B100": 120 * GB,
    "MemoryOptimized_M10": 12 * GB, "MemoryOptimized_M20": 24 * GB, "MemoryOptimized_M50": 60 * GB,
    "MemoryOptimized_M100": 120 * GB,
    "ComputeOptimized_X3": 3 * GB, "ComputeOptimized_X5": 6 * GB, "ComputeOptimized_X10": 12 * GB,
    "ComputeOptimized_X20": 24 * GB, "ComputeOptimized_X50": 60 * GB, "ComputeOptimized_X100": 120 * GB,
}

#: Azure Cache for Redis (family, capacity) -> cache size (bytes): C0-C6 (Basic, Standard), P1-P5 (Premium).
CACHE_REDIS_BYTES: dict[tuple[str, int], int] = {
    ("C", 0): GB // 4, ("C", 1): 1 * GB, ("C", 2): GB * 5 // 2, ("C", 3): 6 * GB, ("C", 4): 13 * GB,
    ("C", 5): 26 * GB, ("C", 6): 53 * GB,
    ("P", 1): 6 * GB, ("P", 2): 13 * GB, ("P", 3): 26 * GB, ("P", 4): 53 * GB, ("P", 5): 120 * GB,
}


def managed_redis_bytes(sku: str) -> int | None:
    return MANAGED_REDIS_BYTES.get(sku)


def cache_redis_bytes(sku: str, capacity: int) -> int | None:
    return CACHE_REDIS_BYTES.get(("P" if sku == "Premium" else "C", capacity))
