"""A real uvicorn process writes only JSON lines, uvicorn's own included, and never the password."""

from __future__ import annotations

import json

import httpx


def test_uvicorn_output_is_json_lines_without_the_password(redis_server, sample_dataset, uvicorn_factory):
    server = uvicorn_factory({**redis_server.env, "DATASET_DIR": str(sample_dataset), "LOG_LEVEL": "INFO"},
                             access_log=True)
    assert httpx.get(f"{server.url}/github_stats/go").status_code == 200
    assert httpx.get(f"{server.url}/github_stats/nope").status_code == 404
    server.proc.terminate()
    server.proc.wait(timeout=10)
    output = server.proc.stderr.read().decode() + server.proc.stdout.read().decode()
    lines = [line for line in output.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    messages = [r["msg"] for r in records]
    assert any(m.startswith("Started server process") for m in messages)  # uvicorn's first line
    assert "cache api starting" in messages and "dataset loaded into redis" in messages
    assert any('"GET /github_stats/nope HTTP/1.1" 404' in m for m in messages)  # access log
    assert not any("color_message" in r for r in records)
    assert redis_server.password not in "\n".join(lines)
