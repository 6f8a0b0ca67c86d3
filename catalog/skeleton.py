"""The files `deskflow init` writes: a small catalog that validates, and the repository around it.

`@DESKFLOW_URL@` and `@DESKFLOW_VERSION@` are filled in by `catalog.scaffold`; YAML files of
catalog kinds get their `yaml-language-server` modeline there too (the path depends on depth).
"""

from __future__ import annotations

#: where the JSON Schemas are copied in a catalog repository (modelines and .vscode point there)
SCHEMAS_DIR = ".deskflow/schemas"

#: each catalog file kind's schema (by file stem) and the files it applies to, as globs from the
#: catalog's top; `deskflow init` maps them for editors
EDITOR_SCHEMAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("settings", ("deskflow.yaml",)),
    ("directory", ("directory.yaml",)),
    ("catalog-item", ("items/**/*.yaml", "items/**/*.yml")),
    ("workflow", ("workflows/**/*.yaml", "workflows/**/*.yml")),
    ("fieldset", ("fieldsets/**/*.yaml", "fieldsets/**/*.yml")),
    ("lookup", ("lookups/**/*.yaml", "lookups/**/*.yml")),
    ("response", ("responses/**/*.yaml", "responses/**/*.yml")),
    ("view", ("views/**/*.yaml", "views/**/*.yml")),
    ("ci-type", ("cmdb/**/*.yaml", "cmdb/**/*.yml")),
    ("scenario", ("tests/**/*.yaml", "tests/**/*.yml")),
    ("guide", ("guides/**/*.yaml", "guides/**/*.yml")),
)

SETTINGS = """\
kind: Settings
name: Service Desk
time_zone: Europe/Amsterdam

# Business time: SLAs and approval timeouts count only these hours.
business_hours:
  days: [mon, tue, wed, thu, fri]
  start: "09:00"
  end: "17:00"

priorities:
  p1: {name: Critical, response: 1 business hours, resolution: 4 business hours}
  p2: {name: High, response: 2 business hours, resolution: 1 business days}
  p3: {name: Normal, response: 4 business hours, resolution: 3 business days}
default_priority: p3
"""

DIRECTORY = """\
# People, groups and roles for trying the catalog out (`deskflow directory sync` copies them into
# the database); production directories usually come from an import.
kind: Directory

roles:
  - id: admin
    name: Catalog administrator
    description: Edits the catalog, reloads it and sees every request.
  - id: employee
    name: Employee
    description: Orders from the catalog and tracks their own requests.

people:
  - {id: ada, name: Ada Admin, email: ada@example.com, roles: [admin, employee]}
  - {id: max, name: Max Manager, email: max@example.com, manager: ada, roles: [employee]}
  - {id: sam, name: Sam Requester, email: sam@example.com, manager: max, roles: [employee]}
  - {id: ivy, name: Ivy Fulfiller, email: ivy@example.com, manager: ada, roles: [employee]}

groups:
  - id: employees
    name: Everyone
    members: [ada, max, sam, ivy]
  - id: it
    name: IT
    description: Hands out and sets up equipment.
    manager: ada
    members: [ivy]
"""

ITEM = """\
kind: CatalogItem
id: new-laptop
name: New laptop
category: Hardware
summary: A laptop, set up and handed to you by IT.
owner: it
visible_to: [group:employees]
workflow: manager-then-it
form:
  - name: model
    label: Model
    type: choice
    required: true
    choices:
      - {value: standard, label: Standard 14-inch}
      - {value: pro, label: Pro 16-inch}
  - name: reason
    label: Why do you need the Pro model?
    type: textarea
    required: true
    min_length: 20
    show_if: "form.model == 'pro'"
"""

WORKFLOW = """\
kind: Workflow
id: manager-then-it
name: Manager approval, then IT
start: manager_approval
states:
  manager_approval:
    label: Waiting for your manager
    approval:
      approvers: requester.manager
      policy: any
    on: {approved: set_up, rejected: rejected}
  set_up:
    label: IT sets it up
    task: {queue: it, sla: 2 business days}
    on: {done: delivered}
  delivered: {end: fulfilled, actions: [{notify: requester}]}
  rejected: {end: rejected, actions: [{notify: requester}]}
"""

SCENARIO = """\
# Scenario tests: `deskflow test` orders the item as someone, takes the steps and checks each
# expectation (docs/changing-the-catalog.md).
kind: Scenarios
item: new-laptop
scenarios:
  - name: the manager approves and IT delivers
    as: sam
    answers: {model: standard}
    steps:
      - expect: {state: manager_approval, approvers: [max]}
      - approve: {as: max}
      - expect: {state: set_up}
      - complete: {task: set_up, as: ivy}
      - expect: {status: closed, outcome: fulfilled}
  - name: the manager rejects
    as: sam
    answers: {model: pro, reason: I edit video every day and the standard model is too slow.}
    steps:
      - reject: {as: max, comment: Not this year.}
      - expect: {status: closed, outcome: rejected}
"""

README = """\
# Service catalog

The catalog of our service desk, run by [Deskflow](@DESKFLOW_URL@): settings in
`deskflow.yaml`, people and groups in `directory.yaml`, what can be ordered in `items/`, how
it is fulfilled in `workflows/`, and scenario tests in `tests/`.

## Changing it

1. Make a branch and edit the YAML files; your editor completes and checks them against the
   JSON Schemas in `.deskflow/schemas/` (VS Code: install the Red Hat YAML extension).
2. Check: `deskflow validate` (every file, and across files) and `deskflow test` (the
   scenarios). `pre-commit install` runs both before every commit.
3. Open a pull request; CI (`.github/workflows/catalog.yml`) runs the same checks and
   annotates the lines. Paste `deskflow diff main..HEAD --format markdown` into the description
   so reviewers see what the change means.
4. After merging, reload the catalog on the server (Admin → Catalog).

After upgrading Deskflow, refresh the schemas (`deskflow init --update-schemas`) and set the
new version in `.pre-commit-config.yaml` (`rev:`) and `.github/workflows/catalog.yml`.
"""

GITIGNORE = """\
# Deskflow's local database and files (deskflow serve / demo)
instance/
__pycache__/
.venv/
"""

PRE_COMMIT = """\
# Deskflow's hooks check the whole catalog whenever a catalog file changes:
#   pip install pre-commit && pre-commit install
repos:
  - repo: @DESKFLOW_URL@
    rev: v@DESKFLOW_VERSION@
    hooks:
      - id: deskflow-validate
      - id: deskflow-test
"""

GITHUB_WORKFLOW = """\
name: catalog
on:
  pull_request:
  push:
    branches: [main]
jobs:
  check:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - run: pip install "deskflow @ git+@DESKFLOW_URL@.git@v@DESKFLOW_VERSION@"
      - name: deskflow validate
        run: deskflow validate --format github
      - name: deskflow test
        run: deskflow test --format github
"""

#: the catalog's own files: (path, kind's schema name or None, text)
FILES: tuple[tuple[str, str | None, str], ...] = (
    ("deskflow.yaml", "settings", SETTINGS),
    ("directory.yaml", "directory", DIRECTORY),
    ("items/new-laptop.yaml", "catalog-item", ITEM),
    ("workflows/manager-then-it.yaml", "workflow", WORKFLOW),
    ("tests/new-laptop.yaml", "scenario", SCENARIO),
    ("README.md", None, README),
    (".gitignore", None, GITIGNORE),
    (".pre-commit-config.yaml", None, PRE_COMMIT),
    (".github/workflows/catalog.yml", None, GITHUB_WORKFLOW),
)
