"""Entry point of the multi-language package ``redis-keda-platform``.

Pulumi's Python language host runs ``python <this folder> <engine address> ...`` (with the
``venv`` it created from requirements.txt). The component code is the repository's own
``components/`` package, one folder up: the package and the stack program share it; the
plumbing that serves it is ``package.py`` here.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.provider import main  # noqa: E402

from provider.package import PlatformProvider  # noqa: E402

if __name__ == "__main__":
    main(PlatformProvider(), sys.argv[1:])
