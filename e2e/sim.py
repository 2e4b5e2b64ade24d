"""A handle on the running local control plane (scripts/sim.sh): paths and a kubectl."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTEXT = "redis-keda-sim"


@dataclass(frozen=True)
class Sim:
    repo: Path
    bin: Path
    dir: Path

    @classmethod
    def from_repo(cls, repo: Path) -> Sim:
        return cls(repo=repo, bin=repo / ".tools" / "bin", dir=repo / ".tools" / "sim")

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def problem(self) -> str | None:
        """None when scripts/sim.sh says the sim is up, else what is wrong."""
        if not (self.bin / "kubectl").exists():
            return "no .tools/bin/kubectl: run 'make toolchain'"
        out = subprocess.run(["bash", str(self.repo / "scripts" / "sim.sh"), "status"],
                             capture_output=True, text=True, timeout=60)
        return None if out.returncode == 0 else (out.stdout + out.stderr).strip()

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
        out = subprocess.run([str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig),
                              "--context", CONTEXT, *args],
                             input=input, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {out.stderr.strip()}")
        return out

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def exists(self, *args: str) -> bool:
        out = self.kubectl("get", *args, "--ignore-not-found", "-o", "name", check=False)
        if out.returncode != 0:
            raise AssertionError(f"kubectl get {' '.join(args)}: {out.stderr.strip()}")
        return bool(out.stdout.strip())
