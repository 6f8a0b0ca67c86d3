"""`load_catalog(path)`: from a catalog directory to immutable, validated models.

Files are parsed, schema-checked and modelled once per content: a reload re-reads
every file but only re-validates the ones whose bytes changed (`file_cache.FileCache`).
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from catalog.catalog import Catalog
from catalog.checks import Index, check_references, check_workflow_use, expand_items
from catalog.ci_types import parse_ci_type
from catalog.directory_parser import parse_directory
from catalog.errors import CatalogInvalid, Location, Severity, SpecError, UsageError
from catalog.file_cache import FileCache, read_head
from catalog.guide_parser import check_guides, parse_guide
from catalog.item_parser import parse_article, parse_fieldset, parse_item, parse_lookup
from catalog.parse import Parsed
from catalog.response_parser import parse_response
from catalog.scenario_parser import check_scenarios, parse_scenarios
from catalog.settings_parser import holidays_run_out, parse_settings
from catalog.source import MAX_BYTES, SourceDoc, parse_yaml, too_large
from catalog.validation import schema_errors
from catalog.view_parser import parse_view
from catalog.workflow_parser import parse_workflow

MAX_FILES = 20_000
#: the kind given to a symlink that leads out of the catalog directory: refused, not read
OUTSIDE = ""

#: kind -> (schema file, folder or file name, parser)
KINDS: dict[str, tuple[str, Callable[[SourceDoc], Parsed]]] = {
    "Settings": ("settings", parse_settings),
    "Directory": ("directory", parse_directory),
    "CatalogItem": ("catalog-item", parse_item),
    "FieldSet": ("fieldset", parse_fieldset),
    "Lookup": ("lookup", parse_lookup),
    "Workflow": ("workflow", parse_workflow),
    "Response": ("response", parse_response),
    "CIType": ("ci-type", parse_ci_type),
    "View": ("view", parse_view),
    "Scenarios": ("scenario", parse_scenarios),
    "Guide": ("guide", parse_guide),
}
FOLDERS = {"items": "CatalogItem", "workflows": "Workflow", "fieldsets": "FieldSet",
           "lookups": "Lookup", "responses": "Response", "views": "View",
           "cmdb": "CIType", "tests": "Scenarios", "guides": "Guide"}
DEFAULT_CACHE = FileCache()


def load_catalog(path: str | Path, cache: FileCache | None = None,
                 today: datetime.date | None = None) -> Catalog:
    """Load and validate a catalog directory; every problem is in `.problems`.

    `today` (default: the machine's date) dates the warning that listed holidays run out.
    """
    enabled = gc.isenabled()
    gc.disable()  # a load allocates many long-lived objects; collecting midway only costs time
    try:
        return _load_catalog(path, cache, today or datetime.date.today())
    finally:
        if enabled:
            gc.enable()


def _load_catalog(path: str | Path, cache: FileCache | None, today: datetime.date) -> Catalog:
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"{path}: not a catalog directory")
    cache = DEFAULT_CACHE if cache is None else cache
    parsed: list[Parsed] = []
    problems: list[SpecError] = []
    digests: list[str] = []
    files = list(_discover(root))
    if len(files) > MAX_FILES:
        raise UsageError(f"{path}: more than {MAX_FILES} catalog files")
    names = {rel.as_posix() for rel, _ in files}
    if "deskflow.yaml" not in names:
        problems.append(SpecError(Location(PurePosixPath("deskflow.yaml"), 1, 1), "",
                                  "file is missing", "every catalog needs its settings file"))
    for rel, expected in files:
        if expected == OUTSIDE:
            problems.append(SpecError(Location(rel, 1, 1), "", "symlink points outside the catalog "
                                      "directory", "copy the file into the catalog instead"))
            continue
        try:
            digest, raw = cache.digest(root / rel)
            key = (rel.as_posix(), digest)
            result = cache.get(key)
            if result is None and raw is None:
                raw = read_head(root / rel)
        except OSError as exc:
            problems.append(SpecError(Location(rel, 1, 1), "", f"cannot read file: {exc.strerror}"))
            continue
        digests.append(f"{rel}:{digest}")
        if result is None:
            result = _load_file(rel, raw or b"", expected)
            cache.put(key, result)
        if isinstance(result, SpecError):
            problems.append(result)
        else:
            problems.extend(result.problems)
            parsed.append(result)
    index = Index(parsed)
    problems += index.problems
    for settings in index.all.get("Settings", []):
        problems += holidays_run_out(settings, today)
    problems += check_references((r for p in parsed for r in p.refs), index)
    items, item_problems = expand_items(index)
    problems += item_problems
    problems += check_workflow_use(items, index)
    problems += check_guides(index.all.get("Guide", []), {i.id: i for i in items})
    scenarios = [p.model for p in index.all.get("Scenarios", [])]
    if scenarios:
        # warnings here: a stale scenario must not stop a catalog from serving (or a reviewer's
        # `deskflow diff`); `deskflow test` refuses to run until they are fixed
        problems += [SpecError(p.where, p.key, p.message, p.hint, Severity.WARNING)
                     for p in check_scenarios(
                         scenarios, {i.id: i for i in items},
                         {k: w.model for k, w in index.by_kind.get("Workflow", {}).items()},
                         index.directory, index.settings)]
    problems.sort(key=SpecError.sort_key)

    def models(kind: str) -> tuple[Any, ...]:
        return tuple(p.model for p in index.by_kind.get(kind, {}).values())

    version = hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()[:16]
    return Catalog(root=root, settings=index.settings, directory=index.directory,
                   items=tuple(sorted(items, key=lambda i: (i.category, i.name))),
                   workflows=models("Workflow"), fieldsets=models("FieldSet"),
                   lookups=models("Lookup"), articles=models("Article"),
                   problems=tuple(_dedupe(problems)), version=version, files=len(files),
                   responses=models("Response"), ci_types=models("CIType"),
                   views=models("View"), scenarios=models("Scenarios"),
                   guides=models("Guide"))


def load_valid_catalog(path: str | Path, cache: FileCache | None = None) -> Catalog:
    """Load a catalog and raise CatalogInvalid when it has errors."""
    catalog = load_catalog(path, cache)
    if not catalog.ok:
        raise CatalogInvalid(list(catalog.errors))
    return catalog


def _dedupe(problems: list[SpecError]) -> Iterator[SpecError]:
    seen: set[str] = set()
    for p in problems:
        text = f"{p.severity}:{p.render()}"
        if text not in seen:
            seen.add(text)
            yield p


def _discover(root: Path) -> Iterator[tuple[PurePosixPath, str]]:
    """The catalog's files and their kind; OUTSIDE for a symlink that leaves the catalog."""
    real = root.resolve()
    for name, kind in (("deskflow.yaml", "Settings"), ("directory.yaml", "Directory")):
        path = root / name
        if path.is_symlink() and not _inside(path, real):
            yield PurePosixPath(name), OUTSIDE
        elif path.is_file():
            yield PurePosixPath(name), kind
    for folder, kind in (*FOLDERS.items(), ("kb", "Article")):
        if (root / folder).is_symlink() and not _inside(root / folder, real):
            yield PurePosixPath(folder), OUTSIDE
            continue
        suffixes = (".md",) if kind == "Article" else (".yaml", ".yml")
        for rel, inside in sorted(_walk(root / folder, folder, real)):
            if not inside:
                yield PurePosixPath(rel), OUTSIDE
            elif rel.endswith(suffixes):
                yield PurePosixPath(rel), kind


def _walk(base: Path, rel: str, real_root: Path) -> Iterator[tuple[str, bool]]:
    """Relative paths of the files under `base`, each with whether it stays in the catalog.

    Symlinked files are followed when they point into the catalog; symlinked folders
    never are. A symlink (file or folder) pointing outside is returned as not inside.
    """
    try:
        entries = list(os.scandir(base))
    except OSError:
        return
    for entry in entries:
        if entry.is_symlink() and not _inside(Path(entry.path), real_root):
            yield f"{rel}/{entry.name}", False
        elif entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), f"{rel}/{entry.name}", real_root)
        elif _is_file(entry):
            yield f"{rel}/{entry.name}", True


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return True  # a symlink loop: reading it says why it cannot be read


def _inside(path: Path, real_root: Path) -> bool:
    """Whether `path`, its symlinks resolved, is in the catalog directory."""
    # realpath, unlike Path.resolve() on 3.11, does not raise on a symlink loop
    return Path(os.path.realpath(path)).is_relative_to(real_root)


def _load_file(rel: PurePosixPath, raw: bytes, expected: str) -> Parsed | SpecError:
    """Parse, schema-check and model one file."""
    if len(raw) > MAX_BYTES:
        return too_large(rel)
    body = ""
    try:
        if expected == "Article":
            front, body, offset = _split_front_matter(rel, raw)
            doc = parse_yaml("\n" * offset + front, rel)
        else:
            doc = parse_yaml(raw, rel)
    except SpecError as exc:
        return exc
    data = doc.data
    if expected == "Article":
        schema_name, parser = "kb-article", None
    else:
        schema_name, parser = KINDS[expected]
        if not isinstance(data, dict):
            what = "empty" if data is None else f"a {type(data).__name__}"
            return SpecError(doc.locate(()), "", f"file is {what}, expected a mapping with "
                             f"kind: {expected}")
        kind = data.get("kind", expected if expected in ("Settings", "Directory") else None)
        if kind != expected and isinstance(kind, str) and kind in KINDS:
            folder = next((f for f, k in FOLDERS.items() if k == kind), None)
            return doc.error(("kind",), f"a {kind} in a folder of {expected} files",
                             f"move it to {folder}/" if folder else "")
    errors = schema_errors(doc, schema_name)
    result = Parsed(expected, doc)
    if errors:
        result.problems = errors
        return result
    if parser is None:
        return parse_article(doc, body)
    return parser(doc)


def _split_front_matter(rel: PurePosixPath, raw: bytes) -> tuple[str, str, int]:
    text = raw.decode("utf-8", errors="replace")
    if not text.startswith("---"):
        raise SpecError(Location(rel, 1, 1), "", "article has no front matter",
                        "start the file with --- , the YAML keys, and --- again")
    lines = text.split("\n")
    for i, line in enumerate(lines[1:], 1):
        if line.strip() == "---":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1:]).strip() + "\n", 1
    raise SpecError(Location(rel, 1, 1), "", "front matter is not closed",
                    "end the YAML keys with a line of ---")
