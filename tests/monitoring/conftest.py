"""The app tests' real redis-server fixtures, shared with the monitoring tests."""

from tests.apps.conftest import redis_factory, redis_plain, redis_server, tls_files  # noqa: F401
