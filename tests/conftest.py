"""Suite-wide: the Redis command audit (tests/apps/command_audit.py) judged once, at the end.

Every redis-server the app tests start records, through MONITOR, what the apps sent it.
When the session ends, any command or argument form that Redis 6.0 lacks (Azure Cache for
Redis is 6.0.14) fails the run, with the list.
"""

from __future__ import annotations

import pytest

from tests.apps.command_audit import AUDIT


@pytest.fixture(scope="session", autouse=True)
def redis_command_audit():
    yield AUDIT
    problems = AUDIT.violations()
    if problems:
        pytest.fail("the apps sent Redis commands that Azure Cache for Redis (Redis 6.0.14) does not have:\n  "
                    + "\n  ".join(problems), pytrace=False)
