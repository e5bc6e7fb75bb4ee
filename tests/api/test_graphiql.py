"""GraphiQL without a CDN: the page names the local copies of its scripts when there are all of
them, the CDN otherwise; the copies are served with their types, and nothing beside them."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import stat
import sys
import tarfile
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from graph.server import ide
from graph.server.app import create_app
from graph.server.ide import (
    EXAMPLE_QUERY,
    OFFLINE,
    _unpack,
    fetch,
    page_for,
    strawberry_page,
)
from graph.server.settings import Settings
from graph.server.static import CDN, assets, complete, packages

PAGE = strawberry_page()
HTML = {"Accept": "text/html"}
TYPES = {".js": {"text/javascript", "application/javascript"}, ".css": {"text/css"}}


def fake_assets(folder: Path, page: str = PAGE) -> dict[str, bytes]:
    """A file for each asset the page loads, its content naming it."""
    files = {path: f"/* {path} */".encode() for path in assets(page)}
    for path, content in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(content)
    return files


def ide_app(
    app: FastAPI, database_url: str, folder: Path, graphiql: bool | None = True, demo: bool = False
) -> FastAPI:
    settings = Settings(
        database_url=database_url, graphiql_assets=folder, graphiql=graphiql, lending_demo=demo
    )
    return create_app(settings, database_url, app.state.schema)


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def test_the_page_loads_react_graphiql_and_their_peers() -> None:
    assert {"react@18.2.0", "react-dom@18.2.0", "js-cookie@3.0.5"} <= set(packages(PAGE))
    assert any(p.startswith("graphiql@") for p in packages(PAGE))
    assert any(p.startswith("@graphiql/plugin-explorer@") for p in packages(PAGE))
    assert len(assets(PAGE)) == PAGE.count(CDN) == 7


async def test_with_every_asset_present_the_page_names_the_local_copies(
    app, database_url, tmp_path
) -> None:
    files = fake_assets(tmp_path)
    async with client_of(ide_app(app, database_url, tmp_path)) as client:
        page = await client.get("/graphql", headers=HTML)
        assert page.status_code == 200
        assert CDN not in page.text
        for path, content in files.items():
            assert f'"/graphql/assets/{path}"' in page.text
            served = await client.get(f"/graphql/assets/{path}")
            assert served.status_code == 200
            assert served.content == content
            kind = served.headers["content-type"].split(";")[0]
            assert kind in TYPES[Path(path).suffix]
            assert "immutable" in served.headers["cache-control"]
        # The integrity hashes stay: the browser checks that the copies are the CDN's bytes.
        assert page.text.count("integrity=") == PAGE.count("integrity=")


@pytest.mark.parametrize("missing", ["folder", "one file"])
async def test_otherwise_the_page_is_strawberrys_and_nothing_is_served(
    app, database_url, tmp_path, missing
) -> None:
    if missing == "one file":
        fake_assets(tmp_path)
        (tmp_path / next(iter(assets(PAGE)))).unlink()
    folder = tmp_path if missing == "one file" else tmp_path / "absent"
    async with client_of(ide_app(app, database_url, folder)) as client:
        page = await client.get("/graphql", headers=HTML)
        assert page.text == page_for(PAGE)  # Strawberry's, opening on our example
        path = list(assets(PAGE))[-1]
        assert (await client.get(f"/graphql/assets/{path}")).status_code == 404


@pytest.mark.parametrize("demo", [True, False], ids=["demo", "not demo"])
async def test_the_page_opens_on_the_example_with_the_demo_key_only_in_the_demo(
    app, database_url, tmp_path, demo
) -> None:
    async with client_of(ide_app(app, database_url, tmp_path / "absent", demo=demo)) as client:
        page = (await client.get("/graphql", headers=HTML)).text
    assert json.dumps(EXAMPLE_QUERY) in page
    assert "Welcome to GraphiQL" not in page
    assert ("lnd_demo_admin" in page) is demo
    assert ("parameters.headers ||" in page) is demo


def test_the_page_says_in_plain_words_when_its_scripts_do_not_load() -> None:
    page = page_for(PAGE)
    assert json.dumps(OFFLINE) in page
    assert "typeof GraphiQL === 'undefined'" in page
    assert page.index(json.dumps(OFFLINE)) > page.index('id="graphiql"')


def test_production_refuses_the_demo_setting() -> None:
    with pytest.raises(ValueError, match="LENDING_DEMO"):
        Settings(lending_env="production", lending_demo=True, metrics_token="m" * 32)


async def test_without_graphiql_no_asset_is_served(app, database_url, tmp_path) -> None:
    fake_assets(tmp_path)
    async with client_of(ide_app(app, database_url, tmp_path, graphiql=False)) as client:
        path = next(iter(assets(PAGE)))
        assert (await client.get(f"/graphql/assets/{path}")).status_code == 404


async def test_no_path_leads_outside_the_folder(app, database_url, tmp_path) -> None:
    folder = tmp_path / "assets"
    fake_assets(folder)
    (tmp_path / "secret.txt").write_text("secret")
    (folder / "link.txt").symlink_to(tmp_path / "secret.txt")
    async with client_of(ide_app(app, database_url, folder)) as client:
        for path in (
            "../secret.txt",
            "..%2Fsecret.txt",
            "%2e%2e/secret.txt",
            "react@18.2.0/..%2F..%2Fsecret.txt",
            f"{tmp_path}/secret.txt".lstrip("/"),
            "%2F" + f"{tmp_path}/secret.txt".lstrip("/"),
            "link.txt",
        ):
            answer = await client.get(f"/graphql/assets/{path}")
            assert answer.status_code == 404, path
            assert "immutable" not in answer.headers.get("cache-control", "")
            assert b"secret" not in answer.content
        # A ".." that stays inside reaches the folder: the refusals above are the folder's own.
        inside = next(iter(assets(PAGE)))
        assert (await client.get(f"/graphql/assets/x/..%2F{inside}")).status_code == 200
        assert (await client.post(f"/graphql/assets/{next(iter(assets(PAGE)))}")).status_code == 405


def test_unpacking_keeps_a_packages_files_below_its_folder(tmp_path) -> None:
    tarball = tmp_path / "package.tgz"
    with tarfile.open(tarball, "w:gz") as archive:
        for name in ("package/dist/a.js", "package/../../escaped.js", "/package/b.css"):
            member = tarfile.TarInfo(name)
            member.size = len(name)
            archive.addfile(member, io.BytesIO(name.encode()))
        link = tarfile.TarInfo("package/link.js")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    _unpack(tarball, tmp_path / "out")
    found = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert found == ["out/dist/a.js", "out/package/b.css", "package.tgz"]


# What the fake registry below holds: two packages, one scoped, each with more than the page needs.
REGISTRY = {
    "tiny@1.0.0": {"dist/tiny.min.js": "tiny()", "dist/tiny.js": "tiny ( )", "LICENSE": "MIT"},
    "@scope/look@2.1.0": {
        "dist/look.css": "body{}",
        "dist/look.css.map": "{}",
        "src/look.scss": "body {}",
        "package.json": "{}",
    },
}
NEEDED = {"tiny@1.0.0/dist/tiny.min.js": "tiny()", "@scope/look@2.1.0/dist/look.css": "body{}"}
# `npm pack SPEC… --json --pack-destination .`, as npm answers it, from REGISTRY (in $REGISTRY).
FAKE_NPM = """
import io, json, os, sys, tarfile
registry = json.loads(os.environ["REGISTRY"])
packed = []
for spec in [a for a in sys.argv[2:] if "@" in a and not a.startswith("-")]:
    name, version = spec.rsplit("@", 1)
    filename = name.lstrip("@").replace("/", "-") + f"-{version}.tgz"
    with tarfile.open(filename, "w:gz") as archive:
        for path, text in registry[spec].items():
            member = tarfile.TarInfo(f"package/{path}")
            member.size = len(text.encode())
            archive.addfile(member, io.BytesIO(text.encode()))
    packed.append({"name": name, "version": version, "filename": filename})
print(json.dumps(packed))
"""


def page_naming(files: dict[str, str]) -> str:
    """A page like Strawberry's, loading ``files`` from the CDN with their integrity hashes."""
    tags = []
    for path, text in files.items():
        digest = base64.b64encode(hashlib.sha384(text.encode()).digest()).decode()
        attribute = "href" if path.endswith(".css") else "src"
        tags.append(f'<x {attribute}="{CDN}{path}"\n integrity="sha384-{digest}"></x>')
    return "\n".join(tags)


@pytest.fixture
def registry(tmp_path, monkeypatch) -> Path:
    """An `npm` answering from REGISTRY."""
    npm = tmp_path / "npm"
    npm.write_text(f"#!{sys.executable}\n{FAKE_NPM}")
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("REGISTRY", json.dumps(REGISTRY))
    return npm


def tree(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()
    }


def test_fetching_keeps_what_the_page_loads_with_maps_and_licences(
    registry, tmp_path, monkeypatch
) -> None:
    page = page_naming(NEEDED)
    monkeypatch.setattr(ide, "browser_pages", lambda: [page])
    folder = tmp_path / "assets"
    (folder / "stale").mkdir(parents=True)
    assert sorted(fetch(folder, npm=str(registry))) == ["@scope/look@2.1.0", "tiny@1.0.0"]
    assert tree(folder) == NEEDED | {
        "tiny@1.0.0/LICENSE": "MIT",
        "@scope/look@2.1.0/dist/look.css.map": "{}",
        "@scope/look@2.1.0/package.json": "{}",
    }
    assert complete(page, folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets", "npm"]  # nothing left beside


def test_a_file_not_matching_its_hash_leaves_the_previous_folder(
    registry, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(
        ide,
        "browser_pages",
        lambda: [page_naming(NEEDED | {"tiny@1.0.0/dist/tiny.min.js": "tampered()"})],
    )
    folder = tmp_path / "assets"
    (folder / "kept.js").parent.mkdir(parents=True)
    (folder / "kept.js").write_text("previous")
    with pytest.raises(RuntimeError, match=r"tiny\.min\.js"):
        fetch(folder, npm=str(registry))
    assert tree(folder) == {"kept.js": "previous"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assets", "npm"]


def test_check_says_whether_the_folder_is_complete(tmp_path) -> None:
    assert ide.main(["--check", str(tmp_path)]) == 1
    dashboard = ide.browser_pages()[1]
    fake_assets(tmp_path)
    assert ide.main(["--check", str(tmp_path)]) == 1  # the dashboard's scripts are missing
    fake_assets(tmp_path, dashboard)
    assert ide.main(["--check", str(tmp_path)]) == 0
