"""Admin → Catalog and GET /api/v1/admin/catalog name the git commit the catalog was loaded from:
read once at load and at reload, nothing shown when the catalog is not in git or git is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.missing import missing
from tests.web.conftest import ACME, Auth
from tests.web.test_api import Api, cli_token, valid
from web import create_app


def git(cwd: Path, *args: str) -> str:
    if shutil.which("git") is None:
        missing("git is not installed (apt-get install git)", "git test")
    done = subprocess.run(["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
                          cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_app(tmp_path: Path, template_db: Path, catalog: Path):
    db_file = tmp_path / "deskflow.sqlite"
    shutil.copy(template_db, db_file)
    return create_app({"TESTING": True, "SECRET_KEY": "test", "DESKFLOW_DATABASE_URL": f"sqlite:///{db_file}",
                       "DESKFLOW_CATALOG": str(catalog), "DESKFLOW_SECURE_COOKIES": False,
                       "RATELIMIT_ENABLED": False, "DESKFLOW_PASSWORD_HASHING": "fast"})


@pytest.fixture
def repo(tmp_path) -> Path:
    """acme in a git repository of its own, its catalog in the folder `acme`, one commit."""
    root = tmp_path / "repo"
    shutil.copytree(ACME, root / "acme")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "The acme catalog")
    return root


@pytest.fixture
def auth_for():
    """A test client of `app`, signed in as `user`."""

    def login(app, user: str):
        client = app.test_client()
        Auth(client).login(user)
        return client

    return login


def admin_api(runner, app) -> Api:
    return Api(app.test_client(), cli_token(runner, app, "oscar"))


def test_the_catalog_page_and_the_api_name_the_commit_and_uncommitted_changes(
        tmp_path, template_db, repo, runner, auth_for):
    app = make_app(tmp_path, template_db, repo / "acme")
    head = git(repo, "rev-parse", "HEAD")
    client = auth_for(app, "oscar")
    page = client.get("/admin/").get_data(as_text=True)
    assert (f'<dd class="col-sm-9" id="catalog-commit"><code title="{head}">{head[:10]}</code>\n'
            "    The acme catalog</dd>") in page
    api = admin_api(runner, app)
    status = valid(api.get("/api/v1/admin/catalog"), "CatalogStatus")
    assert status["commit"] == {"hash": head, "short": head[:10], "subject": "The acme catalog",
                                "dirty": False}

    item = repo / "acme" / "items" / "vpn-access.yaml"
    item.write_text(item.read_text().replace("name: VPN access", "name: Remote access (VPN)"))
    assert valid(api.get("/api/v1/admin/catalog"), "CatalogStatus")["commit"]["dirty"] is False
    reloaded = valid(api.post("/api/v1/admin/catalog/reload"), "CatalogStatus")  # read at reload
    assert reloaded["commit"] == {**status["commit"], "dirty": True}
    page = client.get("/admin/").get_data(as_text=True)
    assert '<span class="badge text-bg-warning">uncommitted changes</span>' in page

    git(repo, "commit", "-qam", "Rename VPN access")
    moved = valid(api.post("/api/v1/admin/catalog/reload"), "CatalogStatus")["commit"]
    assert (moved["subject"], moved["dirty"]) == ("Rename VPN access", False)
    assert moved["hash"] == git(repo, "rev-parse", "HEAD") != head


def test_changes_outside_the_catalog_folder_do_not_make_it_dirty(tmp_path, template_db, repo,
                                                                 runner):
    (repo / "notes.txt").write_text("not part of the catalog\n")
    app = make_app(tmp_path, template_db, repo / "acme")
    assert valid(admin_api(runner, app).get("/api/v1/admin/catalog"),
                 "CatalogStatus")["commit"]["dirty"] is False


def test_a_catalog_outside_git_shows_no_commit(tmp_path, template_db, runner, auth_for):
    outside = tmp_path / "plain"
    shutil.copytree(ACME, outside)
    app = make_app(tmp_path, template_db, outside)
    assert "Git commit" not in auth_for(app, "oscar").get("/admin/").get_data(as_text=True)
    assert valid(admin_api(runner, app).get("/api/v1/admin/catalog"),
                 "CatalogStatus")["commit"] is None


def test_without_git_installed_the_catalog_loads_and_shows_no_commit(tmp_path, template_db, repo,
                                                                     runner, auth_for, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))
    app = make_app(tmp_path, template_db, repo / "acme")
    client = auth_for(app, "oscar")
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "Git commit" not in page.get_data(as_text=True)
    assert valid(admin_api(runner, app).get("/api/v1/admin/catalog"),
                 "CatalogStatus")["commit"] is None
