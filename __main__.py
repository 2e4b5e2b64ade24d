"""redis-keda-platform: validate the stack config, build the tree, export outputs.

The target (aks | kind) is resolved in one place: components.platform.TARGETS.
"""

import pulumi

from components.config import ConfigError, load_config, raw_pulumi_config
from components.platform import build_platform, export_outputs

try:
    config = load_config(raw_pulumi_config())
except ConfigError as exc:
    # Fail before any resource is registered, with the key(s) named.
    raise pulumi.RunError(f"invalid stack config: {exc}") from None

export_outputs(build_platform(config))
