"""Random but realistic user records (Faker), reproducible with a seed."""

from __future__ import annotations

from collections.abc import Iterator

from faker import Faker


def records(seed: int | None = None, locale: str = "en_US") -> Iterator[dict[str, str]]:
    fake = Faker(locale)
    if seed is not None:
        fake.seed_instance(seed)
    while True:
        yield {
            "name": fake.name(),
            "email": fake.email(),
            "address": fake.address().replace("\n", ", "),
        }
