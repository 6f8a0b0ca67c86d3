"""`load_catalog(path)`: from a catalog directory to immutable, validated models.

Files are parsed, schema-checked and modelled once per content: a reload re-reads
every file but only re-validates the ones whose bytes changed.
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from catalog import parse
from catalog.checks import Index, check_references, check_workflow_use, expand_items
from catalog.errors import CatalogInvalid, Location, SpecError, UsageError
from catalog.models import Article, CatalogItem, Directory, FieldSet, Lookup, Settings
from catalog.parse import Parsed, suggest
from catalog.source import MAX_BYTES, SourceDoc, dotted, parse_yaml, too_large
from catalog.workflow import Workflow

MAX_FILES = 20_000
#: the kind given to a symlink that leads out of the catalog directory: refused, not read
OUTSIDE = ""
MAX_MESSAGE = 200

#: kind -> (schema file, folder or file name, parser)
KINDS: dict[str, tuple[str, Callable[[SourceDoc], Parsed]]] = {
    "Settings": ("settings", parse.parse_settings),
    "Directory": ("directory", parse.parse_directory),
    "CatalogItem": ("catalog-item", parse.parse_item),
    "FieldSet": ("fieldset", parse.parse_fieldset),
    "Lookup": ("lookup", parse.parse_lookup),
    "Workflow": ("workflow", parse.parse_workflow),
}
FOLDERS = {"items": "CatalogItem", "workflows": "Workflow", "fieldsets": "FieldSet",
           "lookups": "Lookup"}
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_NAMES = ("settings", "directory", "catalog-item", "fieldset", "lookup", "workflow",
                "kb-article")


@cache
def schema(name: str) -> dict[str, Any]:
    """One of the packaged JSON Schemas, by file stem."""
    text = (SCHEMA_DIR / f"{name}.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def validator(name: str) -> Draft202012Validator:
    s = schema(name)
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)


def _is_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


#: the formats jsonschema's FORMAT_CHECKER asserts, as it checks them (strings only)
FAST_FORMATS: dict[str, Callable[[str], bool]] = {"date": _is_date, "email": lambda v: "@" in v}


def fast_validator(s: dict[str, Any]) -> Callable[[Any], bool]:
    """Check a Draft 2020-12 schema, then compile it with jsonschema-rs for quick yes/no answers."""
    Draft202012Validator.check_schema(s)
    compiled = jsonschema_rs.Draft202012Validator(s, validate_formats=True, formats=FAST_FORMATS)
    return compiled.is_valid  # type: ignore[no-any-return]


@cache
def fast_check(name: str) -> Callable[[Any], bool]:
    """One of the packaged schemas compiled by jsonschema-rs: the quick yes on clean files.

    Only files it rejects go through jsonschema, which then says what is wrong and where.
    Both read Draft 2020-12 and assert the same formats (tests/catalog/test_schemas.py).
    """
    return fast_validator(schema(name))


@dataclass(frozen=True, slots=True)
class Catalog:
    """A loaded catalog: its models and every problem found, errors and warnings."""

    root: Path
    settings: Settings
    directory: Directory
    items: tuple[CatalogItem, ...]
    workflows: tuple[Workflow, ...]
    fieldsets: tuple[FieldSet, ...]
    lookups: tuple[Lookup, ...]
    articles: tuple[Article, ...]
    problems: tuple[SpecError, ...]
    version: str
    files: int
    _by_id: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False,
                                                    compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", MappingProxyType({
            kind: MappingProxyType({x.id: x for x in things}) for kind, things in (
                ("item", self.items), ("workflow", self.workflows), ("lookup", self.lookups),
                ("article", self.articles), ("fieldset", self.fieldsets))}))

    @property
    def errors(self) -> tuple[SpecError, ...]:
        return tuple(p for p in self.problems if p.is_error)

    @property
    def warnings(self) -> tuple[SpecError, ...]:
        return tuple(p for p in self.problems if not p.is_error)

    @property
    def ok(self) -> bool:
        return not self.errors

    def item(self, item_id: str) -> CatalogItem | None:
        return self._by_id["item"].get(item_id)  # type: ignore[no-any-return]

    def workflow(self, workflow_id: str) -> Workflow | None:
        return self._by_id["workflow"].get(workflow_id)  # type: ignore[no-any-return]

    def lookup(self, lookup_id: str) -> Lookup | None:
        return self._by_id["lookup"].get(lookup_id)  # type: ignore[no-any-return]

    def article(self, article_id: str) -> Article | None:
        return self._by_id["article"].get(article_id)  # type: ignore[no-any-return]

    def functions(self) -> dict[str, Callable[..., Any]]:
        """The catalog's functions for expressions (`lookup('systems', form.system)`)."""

        def lookup(lookup_id: str, value: Any) -> dict[str, Any] | None:
            found = self.lookup(lookup_id)
            entry = found.get(str(value)) if found and value is not None else None
            if entry is None:
                return None
            return {"value": entry.value, "label": entry.label, "parent": entry.parent,
                    "data": dict(entry.data)}

        return {"lookup": lookup}


class FileCache:
    """Parsed files by (path, content hash), shared by reloads of the same catalog."""

    def __init__(self, limit: int = 50_000) -> None:
        self.entries: dict[tuple[str, str], Parsed | SpecError] = {}
        #: absolute path -> (mtime_ns, size, ctime_ns, content hash): unchanged files are not read
        self.stats: dict[str, tuple[int, int, int, str]] = {}
        self.limit = limit

    def get(self, key: tuple[str, str]) -> Parsed | SpecError | None:
        return self.entries.get(key)

    def put(self, key: tuple[str, str], value: Parsed | SpecError) -> None:
        if len(self.entries) >= self.limit:
            self.entries.clear()
            self.stats.clear()
        self.entries[key] = value

    def digest(self, path: Path) -> tuple[str, bytes | None]:
        """The file's content hash, and its bytes when they had to be read."""
        st = path.stat()
        sig = (st.st_mtime_ns, st.st_size, st.st_ctime_ns)
        known = self.stats.get(str(path))
        if known is not None and known[:3] == sig:
            return known[3], None
        raw = read_head(path)
        digest = hashlib.sha256(raw).hexdigest()
        self.stats[str(path)] = (*sig, digest)
        return digest, raw


def read_head(path: Path) -> bytes:
    """The file's bytes, but no more than one past the size limit: enough to refuse it."""
    with path.open("rb") as fh:
        return fh.read(MAX_BYTES + 1)


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
        problems += parse.holidays_run_out(settings, today)
    problems += check_references((r for p in parsed for r in p.refs), index)
    items, item_problems = expand_items(index)
    problems += item_problems
    problems += check_workflow_use(items, index)
    problems.sort(key=SpecError.sort_key)

    def models(kind: str) -> tuple[Any, ...]:
        return tuple(p.model for p in index.by_kind.get(kind, {}).values())

    version = hashlib.sha256("\n".join(sorted(digests)).encode()).hexdigest()[:16]
    return Catalog(root=root, settings=index.settings, directory=index.directory,
                   items=tuple(sorted(items, key=lambda i: (i.category, i.name))),
                   workflows=models("Workflow"), fieldsets=models("FieldSet"),
                   lookups=models("Lookup"), articles=models("Article"),
                   problems=tuple(_dedupe(problems)), version=version, files=len(files))


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
        return parse.parse_article(doc, body)
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


def schema_errors(doc: SourceDoc, name: str) -> list[SpecError]:
    """Schema violations, each at the position of the value (or key) it is about."""
    if fast_check(name)(doc.data):
        return []
    return [_spec_error(doc, e) for e in validator(name).iter_errors(doc.data)]


def _spec_error(doc: SourceDoc, e: ValidationError) -> SpecError:
    while e.validator in ("oneOf", "anyOf") and e.context:
        deeper = _closest_branch(e)
        if deeper is None:
            break
        e = deeper
    path = list(e.absolute_path)
    if e.validator == "additionalProperties" and isinstance(e.instance, dict):
        known = set(e.schema.get("properties", {}))
        extra = sorted(k for k in e.instance if k not in known)
        if extra:
            return doc.error([*path, extra[0]], f"unknown key {extra[0]}",
                             suggest(extra[0], known), at_key=True)
    if e.validator == "required":
        missing = e.message.split("'")[1] if "'" in e.message else ""
        return doc.error(path, f"missing required key {missing}", at_key=bool(path))
    if e.validator == "maxLength":
        return doc.error(path, f"is longer than {e.validator_value} characters")
    if e.validator == "enum":
        shown = ", ".join(str(x) for x in e.validator_value)
        return doc.error(path, f"{_short(e.instance)} is not one of {shown}")
    if e.validator in ("oneOf", "anyOf"):
        return doc.error(path, f"{_short(e.instance)} is not a valid value here",
                         _one_of_hint(e))
    message = e.message if len(e.message) <= MAX_MESSAGE else e.message[:MAX_MESSAGE] + "..."
    return doc.error(path, message)


def _closest_branch(e: ValidationError) -> ValidationError | None:
    """The error of the oneOf branch the author most likely meant: the one that got deepest."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in e.context or ():
        branches.setdefault(sub.schema_path[0] if sub.schema_path else 0, []).append(sub)
    base = len(e.absolute_path)

    def depth(errs: list[ValidationError]) -> tuple[int, int, int]:
        at_base = [x for x in errs if len(x.absolute_path) == base]
        missing = any(x.validator in ("required", "type", "const") for x in at_base)
        return (0 if missing else 1, max(len(x.absolute_path) for x in errs), -len(errs))

    ranked = sorted(branches.values(), key=depth, reverse=True)
    if len(ranked) > 1 and depth(ranked[0]) == depth(ranked[1]):
        return None
    return best_match(ranked[0]) if ranked else None


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_of_hint(e: ValidationError) -> str:
    desc = e.schema.get("description", "")
    return desc.split(". ")[0].rstrip(".") if desc else ""


def format_path(path: list[str | int]) -> str:
    return dotted(path)
