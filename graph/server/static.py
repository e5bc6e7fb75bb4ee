"""Pages' scripts from a CDN, or from a folder of copies: what a page loads, and serving them.

A page this service serves (GraphiQL's, graph.server.ide; the demo's dashboard,
graph.server.dashboard) names each script by its CDN URL followed by its integrity hash. When a
folder holds a copy of every file a page names (`make graphiql-assets`, laid out as the CDN lays
them out), the page names the copies instead, served from here; the hashes stay, so the browser
still checks the bytes.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import Request, Response
from starlette.staticfiles import StaticFiles

CDN = "https://unpkg.com/"
# An asset of the page: its path on the CDN, and the integrity hash that follows it.
_ASSET = re.compile(r'(?:src|href)="https://unpkg\.com/([^"]+)"\s+integrity="(sha\d+)-([^"]+)"')
# Versioned paths never change: browsers may keep them.
CACHE_CONTROL = "public, max-age=31536000, immutable"


def assets(page: str) -> dict[str, tuple[str, str]]:
    """The CDN paths the page loads (``react@18.2.0/umd/react.production.min.js`` …), each
    with its integrity hash (algorithm, base64 digest)."""
    return {path: (algorithm, digest) for path, algorithm, digest in _ASSET.findall(page)}


def packages(page: str) -> list[str]:
    """The npm packages the page loads, as ``name@version`` (scoped names included)."""
    return sorted({"/".join(p.split("/")[: 2 if p.startswith("@") else 1]) for p in assets(page)})


def complete(page: str, folder: Path) -> bool:
    """Whether ``folder`` holds every file the page loads."""
    return all((folder / path).is_file() for path in assets(page))


class LocalAssets:
    """The files of ``folder``: ``serve`` is the endpoint of a ``{file:path}`` route."""

    def __init__(self, folder: Path) -> None:
        self.files = StaticFiles(directory=folder)

    async def serve(self, request: Request) -> Response:
        """One file, kept by browsers for a year (its path is versioned); 404 for anything
        else (which no browser is told to keep), and no path leaves the folder."""
        response = await self.files.get_response(request.path_params["file"], request.scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = CACHE_CONTROL
        return response
