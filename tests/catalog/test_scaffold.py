"""`deskflow init`: a catalog repository that validates, its editor schemas, hooks and CI, and
Deskflow's own .pre-commit-hooks.yaml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from catalog.loader import FOLDERS
from catalog.scaffold import deskflow_version
from catalog.source import parse_yaml
from tests.acme import ROOT
from tests.missing import missing
from web.cli import main

MODELINE = re.compile(r"# yaml-language-server: \$schema=(\S+)\n")
CATALOG_FILES = ["deskflow.yaml", "directory.yaml", "items/new-laptop.yaml",
                 "workflows/manager-then-it.yaml", "tests/new-laptop.yaml"]
NEXT_STEPS = [
    "Next steps:",
    "  deskflow validate               # every file, and across files",
    "  deskflow test                   # the scenarios in tests/",
    "  pre-commit install              # both before each commit (replace YOUR-ORG: --deskflow-url)",
    "  git add . && git commit -m 'A new catalog'",
    "  deskflow db upgrade && deskflow directory sync && deskflow password ada",
    "  deskflow serve --insecure-cookies  # try it on this machine, signed in as ada",
    "Then edit items/ and workflows/; docs/changing-the-catalog.md walks a change from branch to "
    "reload.",
]


def needs_git() -> None:
    if shutil.which("git") is None:
        missing("git is not installed (apt-get install git)", "git test")


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and ".git" not in p.relative_to(root).parts[:1])


def test_init_makes_a_repository_whose_catalog_validates(runner, tmp_path, monkeypatch):
    needs_git()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["init", "desk"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Created a catalog repository in desk: 21 files written, 0 skipped; git: initialised an "
        "empty git repository.", "Next steps:", "  cd desk", *NEXT_STEPS[1:]]
    assert (tmp_path / "desk" / ".git").is_dir()
    assert files_under(tmp_path / "desk") == sorted([
        *CATALOG_FILES, "README.md", ".gitignore", ".pre-commit-config.yaml",
        ".github/workflows/catalog.yml", ".vscode/settings.json",
        *(f".deskflow/schemas/{n}.schema.json" for n in (
            "settings", "directory", "catalog-item", "workflow", "fieldset", "lookup", "response",
            "view", "ci-type", "scenario", "guide"))])
    checked = runner.invoke(main, ["validate", "desk"])
    assert checked.output.splitlines() == [
        "desk: 0 errors, 0 warnings in 5 files (1 items, 1 workflows)"]
    assert checked.exit_code == 0
    monkeypatch.chdir(tmp_path / "desk")
    tested = runner.invoke(main, ["test"])
    assert tested.exit_code == 0, tested.output
    assert tested.output.splitlines()[-1].startswith("2 scenarios: 2 passed, 0 failed")


def test_a_directory_that_is_not_empty_is_refused_and_left_alone(runner, tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    result = runner.invoke(main, ["init", str(tmp_path), "--no-git"])
    assert (result.exit_code, result.output.splitlines()) == (2, [
        f"deskflow: {tmp_path}: the directory is not empty (--force adds the files that are "
        "missing and never overwrites one)"])
    assert files_under(tmp_path) == ["notes.txt"]


def test_force_adds_the_missing_files_and_overwrites_none(runner, tmp_path):
    (tmp_path / "deskflow.yaml").write_text("kind: Settings\nname: Ours\ntime_zone: UTC\n")
    (tmp_path / "README.md").write_text("# Ours\n")
    result = runner.invoke(main, ["init", str(tmp_path), "--force", "--no-git"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:3] == [
        f"Created a catalog repository in {tmp_path}: 19 files written, 2 skipped; git: "
        "skipped (--no-git).", "  skipped (exists) deskflow.yaml", "  skipped (exists) README.md"]
    assert (tmp_path / "deskflow.yaml").read_text() == "kind: Settings\nname: Ours\ntime_zone: UTC\n"
    assert (tmp_path / "README.md").read_text() == "# Ours\n"
    assert (tmp_path / "items" / "new-laptop.yaml").is_file()
    assert not (tmp_path / ".git").exists()


@pytest.mark.parametrize(("setup", "expected"), [
    (lambda d: d.write_text("a file\n"), "deskflow: {d}: not a directory"),
    (lambda d: (d.mkdir(), (d / "items").write_text("x\n")),
     "deskflow: {d}/items: a file where the folder items/ goes"),
    (lambda d: (d.mkdir(), (d / "README.md").mkdir()),
     "deskflow: {d}/README.md: a folder where the file README.md goes"),
])
def test_what_is_in_the_way_is_a_usage_error_and_nothing_is_written(runner, tmp_path, setup,
                                                                    expected):
    target = tmp_path / "desk"
    setup(target)
    before = files_under(tmp_path)
    result = runner.invoke(main, ["init", str(target), "--force", "--no-git"])
    assert (result.exit_code, result.output.splitlines()) == (2, [expected.format(d=target)])
    assert files_under(tmp_path) == before


def test_a_catalog_inside_a_repository_gets_no_repository_of_its_own(runner, tmp_path):
    needs_git()
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = runner.invoke(main, ["init", str(tmp_path / "catalog")])
    assert result.exit_code == 0, result.output
    top = Path(subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "--show-toplevel"],
                              capture_output=True, text=True, check=True).stdout.strip())
    assert f"git: already in the git repository at {top}." in result.output.splitlines()[0]
    assert not (tmp_path / "catalog" / ".git").exists()


def glob_regex(glob: str) -> re.Pattern[str]:
    """A VS Code glob from the workspace's top (`/`; `**/` any folders, `*` within one) as a
    regular expression."""
    assert glob.startswith("/"), f"{glob} would match in any folder"
    glob = glob[1:]
    out = re.escape(glob).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
    return re.compile(out)


def test_every_catalog_file_names_its_schema_and_validates_against_it(runner, tmp_path):
    assert runner.invoke(main, ["init", str(tmp_path), "--no-git"]).exit_code == 0
    mapped = json.loads((tmp_path / ".vscode" / "settings.json").read_text())["yaml.schemas"]
    for rel in CATALOG_FILES:
        text = (tmp_path / rel).read_text()
        line = MODELINE.match(text)
        assert line, f"{rel} has no modeline on its first line"
        schema_file = (tmp_path / rel).parent / line.group(1)
        assert schema_file.is_file(), rel
        schema = json.loads(schema_file.read_text())
        data = parse_yaml(text.encode(), Path(rel)).data  # YAML 1.2, as Deskflow reads it
        assert [e.message for e in Draft202012Validator(schema).iter_errors(data)] == [], rel
        editors = [s for s, globs in mapped.items() if any(glob_regex(g).fullmatch(rel) for g in globs)]
        assert [(tmp_path / s).resolve() for s in editors] == [schema_file.resolve()], rel
    every = [g for globs in mapped.values() for g in globs]
    assert not any(glob_regex(g).fullmatch(".github/workflows/catalog.yml") for g in every)


def test_the_editor_settings_cover_every_folder_the_loader_reads(runner, tmp_path):
    assert runner.invoke(main, ["init", str(tmp_path), "--no-git"]).exit_code == 0
    mapped = json.loads((tmp_path / ".vscode" / "settings.json").read_text())["yaml.schemas"]
    for schema in mapped:
        assert (tmp_path / schema).is_file(), schema
    covered = {g.split("/")[1] for globs in mapped.values() for g in globs}
    assert covered >= {*FOLDERS, "deskflow.yaml", "directory.yaml", "tests"}


def test_the_schemas_are_the_packaged_ones_and_update_schemas_refreshes_them(runner, tmp_path):
    assert runner.invoke(main, ["init", str(tmp_path), "--no-git"]).exit_code == 0
    stale = tmp_path / ".deskflow" / "schemas" / "workflow.schema.json"
    packaged = (ROOT / "catalog" / "schemas" / "workflow.schema.json").read_text()
    assert stale.read_text() == packaged
    stale.write_text("{}\n")
    result = runner.invoke(main, ["init", str(tmp_path), "--update-schemas"])
    assert (result.exit_code, result.output.splitlines()) == (0, [
        f"updated {tmp_path}/.deskflow/schemas/workflow.schema.json",
        "1 schema updated, 10 already current"])
    assert stale.read_text() == packaged


def test_update_schemas_wants_a_catalog_and_no_other_option(runner, tmp_path):
    result = runner.invoke(main, ["init", str(tmp_path), "--update-schemas"])
    assert (result.exit_code, result.output.splitlines()) == (2, [
        f"deskflow: {tmp_path}: not a catalog directory (no deskflow.yaml)"])
    result = runner.invoke(main, ["init", str(tmp_path), "--update-schemas", "--force"])
    assert (result.exit_code, result.output.splitlines()) == (2, [
        "deskflow: --update-schemas only refreshes the schemas: it takes no other option"])
    assert files_under(tmp_path) == []


def test_hooks_and_ci_install_deskflow_from_the_url_given(runner, tmp_path):
    result = runner.invoke(main, ["init", str(tmp_path), "--no-git",
                                  "--deskflow-url", "https://git.example.com/it/deskflow.git"])
    assert result.exit_code == 0, result.output
    config = parse_yaml((tmp_path / ".pre-commit-config.yaml").read_bytes(), Path("c")).data
    assert config == {"repos": [{"repo": "https://git.example.com/it/deskflow",
                                 "rev": f"v{deskflow_version()}",
                                 "hooks": [{"id": "deskflow-validate"}, {"id": "deskflow-test"}]}]}
    ci = parse_yaml((tmp_path / ".github" / "workflows" / "catalog.yml").read_bytes(), Path("c")).data
    runs = [step["run"] for step in ci["jobs"]["check"]["steps"] if "run" in step]
    assert runs == [f'pip install "deskflow @ git+https://git.example.com/it/deskflow.git'
                    f'@v{deskflow_version()}"', "deskflow validate --format github",
                    "deskflow test --format github"]
    bad = runner.invoke(main, ["init", str(tmp_path / "x"), "--deskflow-url", "example.com/x"])
    assert (bad.exit_code, bad.output.splitlines()) == (2, [
        "deskflow: --deskflow-url example.com/x: give a git URL (https://..., ssh://... or git@...)"])


def test_the_hooks_in_the_scaffold_are_the_ones_deskflow_publishes(runner, tmp_path):
    assert runner.invoke(main, ["init", str(tmp_path), "--no-git"]).exit_code == 0
    published = parse_yaml((ROOT / ".pre-commit-hooks.yaml").read_bytes(), Path("h")).data
    config = parse_yaml((tmp_path / ".pre-commit-config.yaml").read_bytes(), Path("c")).data
    assert [h["id"] for h in config["repos"][0]["hooks"]] == [h["id"] for h in published]
    for hook in published:
        assert (hook["language"], hook["pass_filenames"]) == ("python", False)
        assert hook["entry"] == f"deskflow {hook['id'].removeprefix('deskflow-')}"
        assert re.search(hook["files"], "items/new-laptop.yaml")
        assert re.search(hook["files"], "kb/vpn.md")
        assert not re.search(hook["files"], "README.txt")


def test_pre_commit_accepts_the_hooks_manifest_and_the_scaffolds_config(runner, tmp_path):
    pytest.importorskip("pre_commit", reason="pre-commit is a dev dependency (pip install -e '.[dev]')")
    assert runner.invoke(main, ["init", str(tmp_path / "desk"), "--no-git"]).exit_code == 0
    for command, path in (("validate-manifest", ROOT / ".pre-commit-hooks.yaml"),
                          ("validate-config", tmp_path / "desk" / ".pre-commit-config.yaml")):
        done = subprocess.run([sys.executable, "-m", "pre_commit", command, str(path)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


def test_init_without_a_directory_scaffolds_the_current_one(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["init", "--no-git"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Created a catalog repository in .: 21 files written, 0 skipped; git: skipped (--no-git).",
        *NEXT_STEPS]
    assert (tmp_path / "deskflow.yaml").is_file()


def test_a_file_that_cannot_be_written_takes_back_the_ones_written_before(runner, tmp_path):
    """Paths past the system's limit (4,096 bytes) fail midway: the first files fit, later ones do
    not; the files written are removed again."""
    room = 4095 - len("/items/new-laptop.yaml")  # deskflow.yaml fits, workflows/... does not
    target = tmp_path
    while len(str(target)) < room - 200:
        target = target / ("d" * 199)
    target = target / ("e" * (room - len(str(target)) - 1))
    target.mkdir(parents=True)
    result = runner.invoke(main, ["init", str(target), "--no-git"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"deskflow: cannot write {target}/")
    assert result.output.endswith("; nothing was written\n")
    assert files_under(tmp_path) == []
