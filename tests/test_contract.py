"""The infra <-> apps contract (docs/contract.md), checked from both sides.

Infra and apps never import each other; this test imports both and checks that what the
rendered manifests hand each container (env names, commands, probes, ports) is what the
app reads and runs, and that the few shared numbers agree.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import pytest

from apps.cache_api.settings import Settings as CacheApiSettings
from apps.producer.settings import ProducerSettings
from apps.worker import settings as worker_settings
from apps.worker.settings import WorkerSettings
from components import config as infra_config
from components import versions
from tests.apps.images import dockerfile
from tests.infra.validation.manifests import pod_templates
from tests.infra.validation.render import BY_ID, rendered

REPO = Path(__file__).resolve().parents[1]
SETTINGS_BY_IMAGE = {
    versions.CACHE_API_IMAGE: CacheApiSettings,
    versions.WORKER_IMAGE: WorkerSettings,
    versions.PRODUCER_IMAGE: ProducerSettings,
}
# Set by Kubernetes or for Python itself, not read by the apps' settings.
NOT_APP_SETTINGS = {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "HOME", "TMPDIR"}


def _app_containers(variant_id: str):
    for tpl in pod_templates(rendered(variant_id).objects):
        for _, container in tpl.containers():
            if container.get("image") in SETTINGS_BY_IMAGE:
                yield tpl, container


@pytest.mark.parametrize("variant_id", sorted(BY_ID))
def test_every_env_var_infra_sets_is_read_by_the_app(variant_id):
    seen = set()
    for tpl, container in _app_containers(variant_id):
        settings_cls = SETTINGS_BY_IMAGE[container["image"]]
        known = {name.upper() for name in settings_cls.model_fields}
        for env in container.get("env") or []:
            if env["name"] in NOT_APP_SETTINGS:
                continue
            assert env["name"] in known, (
                f"{tpl.where}: {env['name']} is set by infra but {settings_cls.__name__} does not read it")
        seen.add(container["image"])
    assert seen == set(SETTINGS_BY_IMAGE), f"not every app image is deployed: {seen}"


def _dockerfile_cmd(app: str) -> list[str]:
    repo = Path(__file__).resolve().parents[1]
    return list(dockerfile.parse(repo / "apps" / app / "Dockerfile", repo).cmd)


@pytest.mark.parametrize("variant_id", sorted(BY_ID))
def test_commands_and_probes_name_modules_that_exist(variant_id):
    for tpl, container in _app_containers(variant_id):
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        probes = [container.get(p) or {} for p in ("livenessProbe", "readinessProbe")]
        argv_sets = [argv] + [p.get("exec", {}).get("command", []) for p in probes]
        for words in argv_sets:
            # `python -m apps.x`, `celery -A apps.x`, uvicorn's `apps.x:app`
            modules = [m for flag, m in zip(words, words[1:], strict=False) if flag in ("-m", "-A") and m.startswith("apps.")]
            modules += [w.split(":")[0] for w in words if re.fullmatch(r"apps(\.\w+)+:\w+", w)]
            for mod in modules:
                assert importlib.util.find_spec(mod) is not None, f"{tpl.where}: no module {mod}"
        if container["image"] == versions.CACHE_API_IMAGE:
            assert "apps.cache_api.main:app" in argv
            assert argv == _dockerfile_cmd("cache_api"), f"{tpl.where}: the pod's command is not the image's CMD"
            assert {p.get("httpGet", {}).get("path") for p in probes} == {"/healthz", "/readyz"}
            assert all(p["httpGet"]["port"] in (8000, "http") for p in probes)
        if container["image"] == versions.WORKER_IMAGE:
            # the worker itself, or (job mode) the sweeper from the same image
            assert argv[:4] == ["celery", "-A", "apps.worker.celery_app", "worker"] or (
                argv == ["python", "-m", "apps.worker.sweeper"] and tpl.owner["kind"] == "Deployment"), argv


def test_visibility_rule_matches_the_worker():
    from components.limits import WORKER_HARD_LIMIT_MARGIN

    assert WORKER_HARD_LIMIT_MARGIN == worker_settings.HARD_LIMIT_MARGIN
    cfg = infra_config.load_config({"workSecondsMax": "9.5", "visibilityTimeoutSeconds": "16"})
    env = {"WORK_SECONDS_MIN": "1", "WORK_SECONDS_MAX": "9.5", "CELERY_VISIBILITY_TIMEOUT": "16"}
    ws = WorkerSettings(**{k.lower(): v for k, v in env.items()})
    assert cfg.worker_hard_time_limit == ws.task_time_limit == math.ceil(9.5) + 5


@pytest.mark.parametrize("variant_id", sorted(BY_ID))
def test_worker_grace_period_covers_the_longest_task_and_shutdown(variant_id):
    checked = 0
    for tpl, container in _app_containers(variant_id):
        if container["image"] != versions.WORKER_IMAGE or (container.get("command") or [""])[0] != "celery":
            continue  # the job-mode sweeper runs no task
        env = {e["name"]: e.get("value") for e in container.get("env") or []}
        hard_limit = math.ceil(float(env["WORK_SECONDS_MAX"])) + worker_settings.HARD_LIMIT_MARGIN
        # docs/worker.md: grace > hard limit + 10 s of warm shutdown
        assert tpl.spec["terminationGracePeriodSeconds"] > hard_limit + 10, tpl.where
        checked += 1
    assert checked == 1, f"expected one worker pod template, checked {checked}"


def test_makefile_builds_the_images_infra_deploys():
    makefile = (REPO / "Makefile").read_text()
    tag = re.search(r"^IMAGE_TAG \?= (\S+)$", makefile, re.M).group(1)
    for var, image in [("CACHE_API_IMAGE", versions.CACHE_API_IMAGE), ("WORKER_IMAGE", versions.WORKER_IMAGE),
                       ("PRODUCER_IMAGE", versions.PRODUCER_IMAGE)]:
        line = re.search(rf"^{var} := \$\(IMAGE_PREFIX\)/(\S+):\$\(IMAGE_TAG\)$", makefile, re.M)
        assert line, f"Makefile has no {var}"
        assert f"redis-keda-platform/{line.group(1)}:{tag}" == image


def test_keda_recovery_trigger_watches_the_workers_unacked_hash():
    """components/worker.py scales on kombu's unacked hash; the worker's transport must keep
    delivered tasks under exactly that key (the worker tests see a running task there)."""
    from kombu.transport.redis import Channel as KombuChannel

    from apps.worker.broker import Transport
    from components.worker import KOMBU_UNACKED_KEY

    assert Transport.Channel.unacked_key == KombuChannel.unacked_key == KOMBU_UNACKED_KEY
    from apps.worker.celery_app import app

    assert "unacked_key" not in (app.conf.broker_transport_options or {})


def test_dead_letter_entry_bound_matches_the_worker():
    """Infra sizes the in-cluster Redis for DEAD_LETTER_MAX_LENGTH entries of the worker's
    largest dead-letter entry (components/limits.py); the worker's default must be that size."""
    from components.limits import DEAD_LETTER_MAX_ENTRY_BYTES

    field = WorkerSettings.model_fields.get("dead_letter_max_entry_bytes")
    assert field is not None, "WorkerSettings does not read DEAD_LETTER_MAX_ENTRY_BYTES"
    assert field.default == DEAD_LETTER_MAX_ENTRY_BYTES


def test_producer_rate_bound_matches_the_producers_flood_guard():
    """Infra refuses a producerRate the producer's --forever would refuse at start-up."""
    from apps.producer.__main__ import MAX_FOREVER_RATE

    limit = next(m.le for m in infra_config.PlatformConfig.model_fields["producer_rate"].metadata if hasattr(m, "le"))
    assert limit == MAX_FOREVER_RATE
