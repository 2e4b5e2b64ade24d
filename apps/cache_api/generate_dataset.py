"""Generate the deterministic sample dataset: ``python -m apps.cache_api.generate_dataset --out DIR``.

One ``<tag>.json`` per tag, each a list of repository records sorted by stars (descending).
The same seed always gives byte-identical files (the shipped sample is ``--seed 42``).
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from apps.cache_api.dataset import RECORDS, SAMPLE_DIR_NOTE, RepoRecord

TAGS = (
    "python", "javascript", "typescript", "go", "rust", "java", "kotlin", "swift", "cpp", "csharp",
    "machine-learning", "kubernetes", "redis", "docker", "react", "django", "fastapi", "data-science",
    "devops", "security",
)
LANGUAGES = {
    "python": "Python", "javascript": "JavaScript", "typescript": "TypeScript", "go": "Go", "rust": "Rust",
    "java": "Java", "kotlin": "Kotlin", "swift": "Swift", "cpp": "C++", "csharp": "C#",
}
OTHER_LANGUAGES = ("Python", "Go", "TypeScript", "Rust", "Java", "C++", "Shell", None)
WORDS = (
    "fast", "tiny", "async", "cloud", "data", "graph", "stream", "vector", "micro", "hyper", "open",
    "lite", "smart", "safe", "quick", "deep", "flow", "edge", "core", "meta", "auto", "neo",
)
NOUNS = (
    "api", "kit", "db", "cache", "queue", "engine", "lab", "hub", "forge", "stack", "scope", "lint",
    "proxy", "router", "shell", "sync", "store", "board", "ops", "bot",
)
OWNERS = (
    "acme", "octolabs", "bytecraft", "northwind", "lambda-works", "opensky", "redbird", "quantum-io",
    "pinecrest", "stackfield", "bluefin", "tinyorg", "devhouse", "cobalt-dev", "mapleleaf",
)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def make_records(tag: str, count: int, rng: random.Random) -> list[RepoRecord]:
    records: list[RepoRecord] = []
    used: set[tuple[str, str]] = set()
    while len(records) < count:
        name = f"{rng.choice(WORDS)}-{rng.choice(NOUNS)}"
        owner = rng.choice(OWNERS)
        if (owner, name) in used:
            name = f"{name}-{len(records)}"
        used.add((owner, name))
        stars = int(200_000 * rng.paretovariate(1.2) / 10) - 19_000
        stars = max(stars, rng.randint(50, 5_000))
        updated = EPOCH - timedelta(seconds=rng.randint(0, 3 * 365 * 86_400))
        topics = sorted({tag, *rng.sample(TAGS, k=rng.randint(0, 3))})
        records.append(RepoRecord(
            name=name,
            owner=owner,
            url=f"https://github.com/{owner}/{name}",
            description=f"A {rng.choice(WORDS)} {rng.choice(NOUNS)} for {tag.replace('-', ' ')}.",
            stars=stars,
            forks=int(stars * rng.uniform(0.02, 0.3)),
            language=LANGUAGES.get(tag) or rng.choice(OTHER_LANGUAGES),
            topics=topics,
            updated_at=updated,
        ))
    records.sort(key=lambda r: (-r.stars, r.owner, r.name))
    return records


def generate(out: Path, tags: int = len(TAGS), repos: int = 50, seed: int = 42) -> list[Path]:
    if not 1 <= tags <= len(TAGS):
        raise ValueError(f"--tags must be between 1 and {len(TAGS)}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for tag in TAGS[:tags]:
        rng = random.Random(f"{seed}:{tag}")
        data = RECORDS.dump_python(make_records(tag, repos, rng), mode="json")
        path = out / f"{tag}.json"
        path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        written.append(path)
    (out / "README.md").write_text(SAMPLE_DIR_NOTE)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write <tag>.json files to")
    parser.add_argument("--tags", type=int, default=len(TAGS), help=f"number of tags (max {len(TAGS)})")
    parser.add_argument("--repos", type=int, default=50, help="repositories per tag")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        paths = generate(args.out, args.tags, args.repos, args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"wrote {len(paths)} tag files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
