"""GraphiQL without a CDN: Strawberry's page, pointed at copies of its scripts served here.

Strawberry's GraphiQL page loads React, GraphiQL and their peers from a public CDN, which a
closed network, a strict proxy or an offline laptop does not reach. `make graphiql-assets`
(``python -m graph.server.ide FOLDER``, see ``main``) fetches the same packages, at the same
versions, from the npm registry into a folder (``GRAPHIQL_ASSETS``, `.graphiql` by default),
laid out as the CDN lays them out (``react@18.2.0/umd/…``), keeping only the files the page
names (with their source maps and licences). When every one of them is there, the router serves
the folder under ``<graphql path>/assets/`` and the page names those copies instead; their
integrity hashes stay, so the browser still checks that the copies are the CDN's bytes (the
fetch checks them first). Otherwise the page is Strawberry's, CDN and all. The demo's dashboard
(graph.server.dashboard) loads its scripts the same way, from the same folder."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from strawberry.fastapi import GraphQLRouter
from strawberry.http.ides import get_graphql_ide_html

from graph.server import dashboard
from graph.server.static import CDN, LocalAssets, assets, complete, packages

# Kept of each package beside the files a page loads: its manifest and its licence (LICENSE, or
# LICENSE.md as chart.js and graphql-ws name it).
PACKAGE_FILES = ("package.json", "LICENSE", "LICENSE.md")


def strawberry_page() -> str:
    """Strawberry's GraphiQL page, as it ships it."""
    return get_graphql_ide_html("graphiql")


def browser_pages() -> list[str]:
    """Every page this service serves that loads scripts from the CDN: GraphiQL's and the
    demo's dashboard (graph.server.dashboard); one folder holds the assets of all of them."""
    return [strawberry_page(), dashboard.template()]


# The query GraphiQL opens on: the README's first example, runnable at once.
EXAMPLE_QUERY = """query Pipeline {
  applications(first: 5, filter: { status: [APPROVED, IN_REVIEW] },
               orderBy: { field: SUBMITTED_AT, direction: DESC }) {
    totalCount
    edges {
      node {
        id reference status amountRequested availableActions
        applicant { fullName email }
        product { code currency annualInterestRate }
        decisions { outcome reason decidedBy decidedAt }
        loan { reference status principal annualInterestRate termMonths }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""
# Shown instead of "Loading..." when GraphiQL's scripts did not load.
OFFLINE = (
    "GraphiQL could not load its scripts from unpkg.com: this computer may be offline, or a "
    "proxy blocks the CDN. Run `make graphiql-assets` (it fetches them once from the npm "
    "registry) and restart the server: it then serves them itself. The API itself works "
    "without them: POST /graphql."
)
_WELCOME = re.compile(r"const EXAMPLE_QUERY = `.*?`;", re.DOTALL)
_HEADERS_STATE = "React.useState(parameters.headers)"


def page_for(page: str, headers: dict[str, str] | None = None) -> str:
    """Strawberry's GraphiQL page opening on ``EXAMPLE_QUERY`` (and, when given, ``headers``
    in its Headers editor), saying so in plain words when its scripts cannot load."""
    example = "const EXAMPLE_QUERY = " + json.dumps(EXAMPLE_QUERY) + ";"
    page = _WELCOME.sub(lambda _: example, page, count=1)
    if headers is not None:
        initial = json.dumps(json.dumps(headers, indent=2))
        page = page.replace(_HEADERS_STATE, f"React.useState(parameters.headers || {initial})")
    fallback = (
        "<script>window.addEventListener('load', function () {"
        " if (typeof GraphiQL === 'undefined') {"
        f" document.getElementById('graphiql').textContent = {json.dumps(OFFLINE)}; }}"
        " });</script>"
    )
    return page.replace("</body>", fallback + "\n  </body>", 1)


class GraphiQLRouter(GraphQLRouter[Any, None]):
    """Strawberry's router, serving GraphiQL's scripts itself when ``graphiql_assets`` has them.

    Only with GraphiQL on and a complete folder: then ``<path>/assets/…`` serves the folder (no
    path leaves it) and the page names those files; otherwise the page loads them from the CDN.
    The page opens on a working example, with ``ide_headers`` (the demo's key) in its Headers
    editor when given.
    """

    def __init__(
        self,
        *args: Any,
        graphiql_assets: Path | None = None,
        ide_headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        page = strawberry_page()
        self.page = page_for(page, ide_headers)
        self.local_assets: LocalAssets | None = None
        if self.graphql_ide == "graphiql" and graphiql_assets and complete(page, graphiql_assets):
            self.local_assets = LocalAssets(graphiql_assets)
            self.add_route(
                f"{kwargs.get('path', '')}/assets/{{file:path}}",
                self.local_assets.serve,
                methods=["GET", "HEAD"],
                include_in_schema=False,
            )

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        """The page, naming the local copies when there are some."""
        page = self.page
        if self.local_assets is not None:
            page = page.replace(CDN, request.url.path.rstrip("/") + "/assets/")
        return HTMLResponse(page)


def fetch(folder: Path, npm: str = "npm") -> list[str]:
    """Fetch the packages of every page (``browser_pages``) from the npm registry into
    ``folder``; return them as ``name@version``.

    The packages are unpacked beside it first (``FOLDER.part``), and only once every file the
    page names is there and matches its integrity hash does that folder take ``folder``'s place:
    an interrupted or failed fetch leaves the previous folder, or none, never half of one.
    """
    page = "\n".join(browser_pages())
    wanted = packages(page)
    staging = folder.with_name(folder.name + ".part")
    previous = folder.with_name(folder.name + ".old")
    for leftover in (staging, previous):
        shutil.rmtree(leftover, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        packed = subprocess.run(
            [npm, "pack", *wanted, "--json", "--pack-destination", "."],
            cwd=staging,
            check=True,
            stdout=subprocess.PIPE,
            text=True,
            timeout=300,
        )
        for entry in json.loads(packed.stdout):
            tarball = staging / entry["filename"]
            _unpack(tarball, staging / f"{entry['name']}@{entry['version']}")
            tarball.unlink()
        for path, (algorithm, digest) in assets(page).items():
            data = (staging / path).read_bytes()
            if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != digest:
                raise RuntimeError(f"{path}: not the file the page's integrity hash names")
        _prune(staging, page)
        if folder.exists():
            folder.rename(previous)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)
    return wanted


def _prune(folder: Path, page: str) -> None:
    """Keep only what the page loads, each file's source map (what a browser's developer tools
    ask for) and each package's ``package.json`` and licence: the rest of a package (its other
    builds, its sources) would be served for nothing."""
    keep = set(assets(page))
    keep |= {f"{path}.map" for path in keep}
    keep |= {f"{spec}/{name}" for spec in packages(page) for name in PACKAGE_FILES}
    for file in sorted(folder.rglob("*"), reverse=True):
        if file.is_dir():
            if not any(file.iterdir()):
                file.rmdir()
        elif file.relative_to(folder).as_posix() not in keep:
            file.unlink()


def _unpack(tarball: Path, target: Path) -> None:
    """The regular files of an npm tarball, below its top folder (`package/`), into ``target``."""
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            parts = PurePosixPath(member.name).parts[1:]
            if not member.isfile() or not parts or ".." in parts:
                continue
            destination = target.joinpath(*parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            with source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink)


def main(argv: list[str] | None = None) -> int:
    """``python -m graph.server.ide [--check] [FOLDER]``: fetch the assets, or (``--check``)
    only say whether the folder has them all (exit status 1 when not)."""
    parser = argparse.ArgumentParser(prog="python -m graph.server.ide", description=main.__doc__)
    parser.add_argument("folder", nargs="?", type=Path, default=Path(".graphiql"))
    parser.add_argument("--check", action="store_true", help="only check the folder")
    args = parser.parse_args(argv)
    if args.check:
        return 0 if all(complete(page, args.folder) for page in browser_pages()) else 1
    for spec in fetch(args.folder):
        print(f"{args.folder}/{spec}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
