"""Cache API: top GitHub repositories per tag, served from Redis (cache-aside, stampede-proof)."""
