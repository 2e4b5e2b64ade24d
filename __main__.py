"""redis-keda-platform: read the stack config, construct the Platform, export its outputs.

The same ``Platform`` component is what the multi-language package serves (provider/):
one path for both uses. The target (aks | kind) is resolved in one place:
components.platform.TARGETS.
"""

import pulumi

from components.config import ConfigError, load_config, raw_pulumi_config
from components.platform import Platform, export_outputs
from components.platform_args import args_from_config

try:
    config = load_config(raw_pulumi_config())
except ConfigError as exc:
    # Fail before any resource is registered, with the key(s) named.
    raise pulumi.RunError(f"invalid stack config: {exc}") from None

export_outputs(Platform("platform", args_from_config(config)))
