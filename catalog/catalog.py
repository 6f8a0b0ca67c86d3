"""The `Catalog`: one loaded catalog directory's models and every problem found."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from catalog.ci_types import CIType
from catalog.errors import SpecError
from catalog.guide_parser import Guide
from catalog.models import (
    Article,
    CatalogItem,
    Directory,
    FieldSet,
    Lookup,
    Response,
    Settings,
    View,
)
from catalog.scenario_parser import ScenarioFile
from catalog.workflow import Workflow


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
    responses: tuple[Response, ...] = ()
    ci_types: tuple[CIType, ...] = ()
    #: shared views of the agents' list (views/*.yaml)
    views: tuple[View, ...] = ()
    #: scenario tests (tests/*.yaml), run by `deskflow test`
    scenarios: tuple[ScenarioFile, ...] = ()
    #: order guides (guides/*.yaml): several items ordered at once
    guides: tuple[Guide, ...] = ()
    _by_id: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False,
                                                    compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", MappingProxyType({
            kind: MappingProxyType({x.id: x for x in things}) for kind, things in (
                ("item", self.items), ("workflow", self.workflows), ("lookup", self.lookups),
                ("article", self.articles), ("fieldset", self.fieldsets),
                ("response", self.responses), ("ci_type", self.ci_types),
                ("view", self.views), ("guide", self.guides))}))

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

    def response(self, response_id: str) -> Response | None:
        return self._by_id["response"].get(response_id)  # type: ignore[no-any-return]

    def guide(self, guide_id: str) -> Guide | None:
        return self._by_id["guide"].get(guide_id)  # type: ignore[no-any-return]

    def ci_type(self, type_id: str) -> CIType | None:
        return self._by_id["ci_type"].get(type_id)  # type: ignore[no-any-return]

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
