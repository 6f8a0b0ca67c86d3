"""A new catalog repository: the skeleton's files, the JSON Schemas for editors, `git init`."""

from __future__ import annotations

import json
import os
import posixpath
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from catalog.errors import DeskflowError, UsageError
from catalog.skeleton import EDITOR_SCHEMAS, FILES, SCHEMAS_DIR
from catalog.validation import SCHEMA_DIR

#: where the hooks and CI install Deskflow from, unless `deskflow init --deskflow-url` says
DEFAULT_URL = "https://github.com/YOUR-ORG/deskflow"
GIT_TIMEOUT = 30


@dataclass(frozen=True, slots=True)
class Scaffolded:
    """What `scaffold_catalog` did: files written and skipped (relative, POSIX), and git's part."""

    root: Path
    written: tuple[str, ...]
    skipped: tuple[str, ...]
    git: str


def deskflow_version() -> str:
    try:
        return version("deskflow")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0.0.0"


def modeline(path: str, schema: str) -> str:
    """The `yaml-language-server` comment pointing a file at its schema, relative to the file."""
    target = posixpath.relpath(f"{SCHEMAS_DIR}/{schema}.schema.json", posixpath.dirname(path) or ".")
    return f"# yaml-language-server: $schema={target}\n"


def schema_files() -> dict[str, str]:
    """`.deskflow/schemas/*.schema.json`: the packaged schema of every file kind, by path."""
    return {f"{SCHEMAS_DIR}/{name}.schema.json": (SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8")
            for name, _ in EDITOR_SCHEMAS}


def vscode_settings() -> str:
    """`yaml.schemas` for VS Code's YAML extension; globs start at the workspace's top (a leading
    `/`), so that `.github/workflows/*.yml` is not taken for a Deskflow workflow."""
    schemas = {f"{SCHEMAS_DIR}/{name}.schema.json": [f"/{g}" for g in globs]
               for name, globs in EDITOR_SCHEMAS}
    return json.dumps({"yaml.schemas": schemas}, indent=2) + "\n"


def skeleton(deskflow_url: str = DEFAULT_URL) -> dict[str, str]:
    """Every file of a new catalog repository, by relative POSIX path."""
    files = {}
    for path, schema, text in FILES:
        text = text.replace("@DESKFLOW_URL@", deskflow_url).replace("@DESKFLOW_VERSION@",
                                                                   deskflow_version())
        files[path] = modeline(path, schema) + text if schema else text
    files[".vscode/settings.json"] = vscode_settings()
    files.update(schema_files())
    return files


def scaffold_catalog(root: Path, force: bool = False, git: bool = True,
                     deskflow_url: str = DEFAULT_URL) -> Scaffolded:
    """Write a new catalog repository into `root` (made if missing).

    A directory with anything in it is refused unless `force`; even then no existing file is
    overwritten (they are listed as skipped). Nothing is written when a file cannot be.
    """
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    if root.is_dir() and any(root.iterdir()) and not force:
        raise UsageError(f"{root}: the directory is not empty (--force adds the files that are "
                         "missing and never overwrites one)")
    files = skeleton(deskflow_url)
    skipped = tuple(p for p in files if os.path.lexists(root / p))
    for path in files:  # a folder in the way of a file, or a file in the way of a folder
        blocked = next((parent for parent in _parents(path) if (root / parent).exists()
                        and not (root / parent).is_dir()), None)
        if blocked:
            raise UsageError(f"{root / blocked}: a file where the folder {blocked}/ goes")
        if path in skipped and (root / path).is_dir():
            raise UsageError(f"{root / path}: a folder where the file {path} goes")
    written = []
    try:
        for path, text in files.items():
            if path in skipped:
                continue
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("x", encoding="utf-8", newline="\n") as out:  # never overwrite
                written.append(path)
                out.write(text)
    except OSError as exc:
        for path in written:  # nothing half-written: take back what this run wrote
            (root / path).unlink(missing_ok=True)
        raise DeskflowError(f"cannot write {exc.filename or root}: {exc.strerror or exc}; "
                            "nothing was written") from None
    return Scaffolded(root, tuple(written), skipped, _git_init(root) if git else "skipped (--no-git)")


def update_schemas(root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Rewrite `.deskflow/schemas/` with this Deskflow's schemas; (changed, unchanged) paths."""
    if not (root / "deskflow.yaml").is_file():
        raise UsageError(f"{root}: not a catalog directory (no deskflow.yaml)")
    changed, same = [], []
    for path, text in schema_files().items():
        target = root / path
        if target.is_file() and target.read_text("utf-8") == text:
            same.append(path)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")
        changed.append(path)
    return tuple(changed), tuple(same)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i + 1]) for i in range(len(parts))]


def _git_init(root: Path) -> str:
    """`git init` unless `root` is in a repository already; what happened, in words."""
    try:
        inside = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"],
                                capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False)
        if inside.returncode == 0:
            top = inside.stdout.strip()
            return f"already in the git repository at {top}"
        # main, as the CI workflow's push trigger says (git before 2.28 has no -b)
        for args in (["init", "-q", "-b", "main"], ["init", "-q"]):
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                                  text=True, timeout=GIT_TIMEOUT, check=False)
            if done.returncode == 0:
                break
    except FileNotFoundError:
        return "git is not installed: run git init yourself"
    except subprocess.TimeoutExpired:
        return "git did not answer: run git init yourself"
    if done.returncode != 0:
        return f"git init failed ({done.stderr.strip() or 'no reason given'})"
    return "initialised an empty git repository"
