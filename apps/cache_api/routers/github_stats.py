"""``GET /github_stats/{tag}``: the tag's list of repositories, as stored (real JSON bytes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from apps.cache_api.deps import CacheDep
from apps.cache_api.errors import json_error
from apps.cache_api.local_cache import SortField

router = APIRouter(tags=["github_stats"])

MAX_LIMIT = 1000


@router.get(
    "/github_stats/{tag}",
    response_class=Response,
    responses={
        200: {"description": "The tag's repositories (a JSON list of records).",
              "content": {"application/json": {}}},
        404: {"description": "Unknown tag."},
        422: {"description": "Invalid `limit` or `sort`."},
        503: {"description": "Redis unavailable, the dataset still loading, or the dataset unusable."},
    },
)
async def github_stats(
    tag: str,
    cache: CacheDep,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT, description="Return at most N records.")] = None,
    sort: Annotated[SortField | None, Query(description="Sort descending by this field.")] = None,
) -> Response:
    tag = tag.lower()
    found = await cache.get_view(tag, sort, limit)
    if found.body is None:
        return json_error(404, "unknown_tag", "no dataset for this tag")
    return Response(found.body, media_type="application/json", headers={"x-cache": found.layer})
