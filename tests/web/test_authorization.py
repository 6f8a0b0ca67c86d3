"""The authorization matrix: every route x every method x every role, against an explicit policy.

The routes come from `app.url_map`, so a new route without a POLICY entry fails here
(docs/reliability-tests.md, test 22). POSTs carry a valid CSRF token and nothing else: a role that may
not act gets its 403/404 before any validation; a role that may act gets 422 (empty input),
or 409 when the request is in no state for it. Another person's request is a 404, never a
403 and never a 200.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.web.conftest import make_app
from tests.web.world import (
    MISSING_NUMBER,
    Browser,
    World,
    build_world,
    lock_version,
    routes,
    rule_args,
    snapshot,
    url_for_rule,
)

ROLES = ("anon", "alice", "peter", "bob", "carol", "leo", "frank", "grace", "oscar")
#: who each role is (None: not signed in)
PEOPLE = {"anon": None, "alice": "alice", "peter": "peter", "bob": "bob", "carol": "carol",
          "leo": "leo", "frank": "frank", "grace": "grace", "oscar": "oscar"}
ROLE_NOTES = {
    "anon": "not signed in",
    "alice": "requester A: ordered r1 and r2",
    "peter": "requester B: an employee with no part in r1 or r2",
    "bob": "the assigned approver (alice's manager): a1 pending, a2 approved",
    "carol": "an approver (director) not assigned to r1 or r2",
    "leo": "bob's delegate while bob is away (delegation set through the service)",
    "frank": "fulfiller in it-hardware, the queue of t2",
    "grace": "fulfiller outside it-hardware (service desk; erin would be an admin)",
    "oscar": "admin",
}

# every signed-in person may; everyone signed in gets 404 / 403 / 422; admins only
ANYONE = (302, 200, 200, 200, 200, 200, 200, 200, 200)
NOBODY = (302, 404, 404, 404, 404, 404, 404, 404, 404)
EMPTY_FORM = (302, 422, 422, 422, 422, 422, 422, 422, 422)
ADMINS = (302, 403, 403, 403, 403, 403, 403, 403, 200)
ADMINS_MISSING = (302, 403, 403, 403, 403, 403, 403, 403, 404)
ADMINS_CONFLICT = (302, 403, 403, 403, 403, 403, 403, 403, 409)
ADMINS_EMPTY_FORM = (302, 403, 403, 403, 403, 403, 403, 403, 422)
QUEUE_MEMBERS = (302, 404, 404, 404, 404, 404, 200, 404, 200)
# a task of r2: its queue's members and admins act; bob, who decided r2's approval, worked the
# request and keeps reading its tasks (403 on acting); leo only may decide for bob: 404
TASK_READERS = (302, 404, 404, 200, 404, 404, 200, 404, 200)
TASK_ACTORS = (302, 404, 404, 403, 404, 404, 422, 404, 422)
# who may see r1 and r2: alice, bob, bob's delegate, admins, and it-hardware (frank): the
# laptop's owner group is their assignment group, so its members are agents from the start
SEES_R1 = (302, 200, 404, 200, 404, 200, 200, 404, 200)
SEES_R2 = (302, 200, 404, 200, 404, 200, 200, 404, 200)
# agents (members of a queue: peter, carol, leo, frank, grace) and admins; others 403
AGENTS = (302, 403, 200, 403, 200, 200, 200, 200, 200)
AGENTS_MISSING = (302, 403, 404, 403, 404, 404, 404, 404, 404)
AGENTS_EMPTY_FORM = (302, 403, 422, 403, 422, 422, 422, 422, 422)

# r1 and r2 are new-laptop requests: it-hardware (frank) is their assignment group
RECORD_AGENTS = (302, 403, 404, 403, 404, 403, 422, 404, 422)
RECORD_VIEWERS = (302, 422, 404, 422, 404, 422, 422, 404, 422)
LOGGERS = (302, 403, 200, 403, 200, 200, 200, 200, 200)

# the JSON API: 401 instead of the sign-in redirect
API_ANYONE = (401, 200, 200, 200, 200, 200, 200, 200, 200)
API_NOBODY = (401, 404, 404, 404, 404, 404, 404, 404, 404)
EVERYONE = (200, 200, 200, 200, 200, 200, 200, 200, 200)
# decide through the API: as on the pages (the approver and their delegate), then 415 for a form
API_DECIDERS = (401, 403, 404, 415, 404, 415, 403, 404, 403)
API_TASK_ACTORS = (401, 404, 404, 403, 404, 404, 415, 404, 415)
API_VIEWERS = (401, 415, 404, 415, 404, 415, 415, 404, 415)
API_DELEGATORS = (401, 403, 404, 415, 404, 403, 403, 404, 415)
API_RECORD_AGENTS = (401, 403, 404, 403, 404, 403, 415, 404, 415)
API_AGENTS = (401, 403, 200, 403, 200, 200, 200, 200, 200)
API_ADMINS = (401, 403, 403, 403, 403, 403, 403, 403, 200)

POLICY: dict[tuple[str, str, str], tuple[int, ...]] = {
    # (method, rule, target)                                  anon alice peter bob carol leo frank grace oscar
    ("GET", "/login", "-"):                                    (200, 200, 200, 200, 200, 200, 200, 200, 200),
    ("POST", "/login", "-"):                                   (400, 400, 400, 400, 400, 400, 400, 400, 400),
    ("POST", "/logout", "-"):                                  (302, 302, 302, 302, 302, 302, 302, 302, 302),
    ("GET", "/", "-"):                                         ANYONE,
    # ---------------------------------------------------------------- the catalog
    ("GET", "/items/<item_id>", "laptop"):                     ANYONE,
    ("GET", "/items/<item_id>", "change"):                     (302, 404, 404, 404, 404, 404, 200, 200, 200),
    ("GET", "/items/<item_id>", "missing"):                    NOBODY,
    ("POST", "/items/<item_id>", "laptop"):                    EMPTY_FORM,
    ("POST", "/items/<item_id>", "change"):                    (302, 404, 404, 404, 404, 404, 422, 422, 422),
    ("POST", "/items/<item_id>", "missing"):                   NOBODY,
    ("GET", "/kb/<article_id>", "laptop"):                     ANYONE,
    ("GET", "/kb/<article_id>", "change"):                     (302, 404, 404, 404, 200, 404, 200, 200, 200),
    ("GET", "/kb/<article_id>", "missing"):                    NOBODY,
    ("GET", "/kb", "-"):                                       ANYONE,
    # order guides (web/orders.py): everyone may order new-hire (422: empty form); an order is
    # seen by its requester, the person it is for, and whoever may see every one of its records
    ("GET", "/guides/<guide_id>", "guide"):                    ANYONE,
    ("GET", "/guides/<guide_id>", "missing"):                  NOBODY,
    ("POST", "/guides/<guide_id>", "guide"):                   EMPTY_FORM,
    ("POST", "/guides/<guide_id>", "missing"):                 NOBODY,
    # o1: alice's laptop and system access; frank (it-hardware) sees the laptop only, so not o1
    ("GET", "/orders/<number>", "o1"):                         (302, 200, 404, 200, 404, 200, 404, 404, 200),
    ("GET", "/orders/<number>", "missing"):                    NOBODY,
    ("POST", "/kb/<article_id>/feedback", "laptop"):           EMPTY_FORM,
    ("POST", "/kb/<article_id>/feedback", "change"):           (302, 404, 404, 404, 422, 404, 422, 422, 422),
    ("POST", "/kb/<article_id>/feedback", "missing"):          NOBODY,
    # ---------------------------------------------------------------- requests
    ("GET", "/requests", "-"):                                 ANYONE,
    ("GET", "/requests/<number>/submitted", "r1"):             SEES_R1,
    ("GET", "/requests/<number>/submitted", "r2"):             SEES_R2,
    ("GET", "/requests/<number>/submitted", "missing"):        NOBODY,
    ("GET", "/requests/<number>", "r1"):                       SEES_R1,
    ("GET", "/requests/<number>", "r2"):                       SEES_R2,
    ("GET", "/requests/<number>", "missing"):                  NOBODY,
    ("GET", "/requests/<number>/diagram.svg", "r1"):           SEES_R1,
    ("GET", "/requests/<number>/diagram.svg", "r2"):           SEES_R2,
    ("GET", "/requests/<number>/diagram.svg", "missing"):      NOBODY,
    # cancel: the requester (or the person it is for) and admins; other viewers 403
    ("POST", "/requests/<number>/cancel", "r1"):               (302, 422, 404, 403, 404, 403, 403, 404, 422),
    ("POST", "/requests/<number>/cancel", "r2"):               (302, 422, 404, 403, 404, 403, 403, 404, 422),
    ("POST", "/requests/<number>/cancel", "missing"):          NOBODY,
    # comment: everyone who may see the request
    ("POST", "/requests/<number>/comment", "r1"):              (302, 422, 404, 422, 404, 422, 422, 404, 422),
    ("POST", "/requests/<number>/comment", "r2"):              (302, 422, 404, 422, 404, 422, 422, 404, 422),
    ("POST", "/requests/<number>/comment", "missing"):         NOBODY,
    # answer: only the requester; r1 waits for no answer (409), r2 does (422: empty answer)
    ("POST", "/requests/<number>/answer", "r1"):               (302, 409, 404, 403, 404, 403, 403, 404, 403),
    ("POST", "/requests/<number>/answer", "r2"):               (302, 422, 404, 403, 404, 403, 403, 404, 403),
    ("POST", "/requests/<number>/answer", "missing"):          NOBODY,
    # retry a failed step or route by hand: admins only (422: empty form); viewers 403
    ("POST", "/requests/<number>/retry", "r1"):                (302, 403, 404, 403, 404, 403, 403, 404, 422),
    ("POST", "/requests/<number>/retry", "r2"):                (302, 403, 404, 403, 404, 403, 403, 404, 422),
    ("POST", "/requests/<number>/retry", "missing"):           NOBODY,
    ("POST", "/requests/<number>/route", "r1"):                (302, 403, 404, 403, 404, 403, 403, 404, 422),
    ("POST", "/requests/<number>/route", "r2"):                (302, 403, 404, 403, 404, 403, 403, 404, 422),
    ("POST", "/requests/<number>/route", "missing"):           NOBODY,
    # the record panel (web/records.py): agents of the record edit it and its links (422: empty
    # form), other viewers 403; anyone who sees it may watch it (422: nobody named)
    ("POST", "/requests/<number>/record", "r1"):               RECORD_AGENTS,
    ("POST", "/requests/<number>/record", "r2"):               RECORD_AGENTS,
    ("POST", "/requests/<number>/record", "missing"):          NOBODY,
    ("POST", "/requests/<number>/links", "r1"):                RECORD_AGENTS,
    ("POST", "/requests/<number>/links", "r2"):                RECORD_AGENTS,
    ("POST", "/requests/<number>/links", "missing"):           NOBODY,
    ("POST", "/requests/<number>/links/remove", "r1"):         RECORD_AGENTS,
    ("POST", "/requests/<number>/links/remove", "r2"):         RECORD_AGENTS,
    ("POST", "/requests/<number>/links/remove", "missing"):    NOBODY,
    ("POST", "/requests/<number>/watchers", "r1"):             RECORD_VIEWERS,
    ("POST", "/requests/<number>/watchers", "r2"):             RECORD_VIEWERS,
    ("POST", "/requests/<number>/watchers", "missing"):        NOBODY,
    ("POST", "/requests/<number>/watchers/remove", "r1"):      RECORD_VIEWERS,
    ("POST", "/requests/<number>/watchers/remove", "r2"):      RECORD_VIEWERS,
    ("POST", "/requests/<number>/watchers/remove", "missing"): NOBODY,
    # the incident lifecycle (web/lifecycle.py): agents resolve (r1 and r2 have no task with a
    # `resolved` outcome: 409) and merge; the caller confirms or reopens (neither is resolved: 409)
    ("POST", "/requests/<number>/resolve", "r1"):              (302, 403, 404, 403, 404, 403, 409, 404, 409),
    ("POST", "/requests/<number>/resolve", "r2"):              (302, 403, 404, 403, 404, 403, 409, 404, 409),
    ("POST", "/requests/<number>/resolve", "missing"):         NOBODY,
    ("POST", "/requests/<number>/confirm", "r1"):              (302, 409, 404, 403, 404, 403, 403, 404, 403),
    ("POST", "/requests/<number>/confirm", "r2"):              (302, 409, 404, 403, 404, 403, 403, 404, 403),
    ("POST", "/requests/<number>/confirm", "missing"):         NOBODY,
    ("POST", "/requests/<number>/reopen", "r1"):               (302, 409, 404, 403, 404, 403, 409, 404, 409),
    ("POST", "/requests/<number>/reopen", "r2"):               (302, 409, 404, 403, 404, 403, 409, 404, 409),
    ("POST", "/requests/<number>/reopen", "missing"):          NOBODY,
    ("POST", "/requests/<number>/merge", "r1"):                RECORD_AGENTS,
    ("POST", "/requests/<number>/merge", "r2"):                RECORD_AGENTS,
    ("POST", "/requests/<number>/merge", "missing"):           NOBODY,
    # satisfaction (web/satisfaction.py): only the person asked answers, once the record is
    # resolved; r1 and r2 are not, so they have no question (404 like a missing record). The
    # emailed link needs no sign-in: its signed token decides, a forged one is a 400 for all
    ("POST", "/requests/<number>/satisfaction", "r1"):         NOBODY,
    ("POST", "/requests/<number>/satisfaction", "r2"):         NOBODY,
    ("POST", "/requests/<number>/satisfaction", "missing"):    NOBODY,
    ("GET", "/satisfaction/<token>", "missing"):               (400, 400, 400, 400, 400, 400, 400, 400, 400),
    ("POST", "/satisfaction/<token>", "missing"):              (400, 400, 400, 400, 400, 400, 400, 400, 400),
    # one-click email actions (web/email_actions.py): no sign-in, the signed token decides who
    # acts; one not signed by us is a 400 for all (its approval or record never shows)
    ("GET", "/email-actions/<token>", "missing"):             (400, 400, 400, 400, 400, 400, 400, 400, 400),
    ("POST", "/email-actions/<token>", "missing"):            (400, 400, 400, 400, 400, 400, 400, 400, 400),
    # major incidents (web/major.py): agents of the record declare, stand down and attach; r1
    # and r2 are requests, not incidents (409); attaching nothing is a 422 before that
    ("POST", "/requests/<number>/major/declare", "r1"):        (302, 403, 404, 403, 404, 403, 409, 404, 409),
    ("POST", "/requests/<number>/major/declare", "r2"):        (302, 403, 404, 403, 404, 403, 409, 404, 409),
    ("POST", "/requests/<number>/major/declare", "missing"):   NOBODY,
    ("POST", "/requests/<number>/major/stand-down", "r1"):     (302, 403, 404, 403, 404, 403, 409, 404, 409),
    ("POST", "/requests/<number>/major/stand-down", "r2"):     (302, 403, 404, 403, 404, 403, 409, 404, 409),
    ("POST", "/requests/<number>/major/stand-down", "missing"): NOBODY,
    ("POST", "/requests/<number>/major/attach", "r1"):         RECORD_AGENTS,
    ("POST", "/requests/<number>/major/attach", "r2"):         RECORD_AGENTS,
    ("POST", "/requests/<number>/major/attach", "missing"):    NOBODY,
    # log a record for a caller: agents (admins, members of a queue or an item's owner group)
    ("GET", "/log", "-"):                                      LOGGERS,
    # the agents' list (web/worklist.py): agents only; saving a view or a bulk action with an
    # empty form is a 422; another person's view (or none) is a 404
    ("GET", "/records", "-"):                                  AGENTS,
    ("POST", "/records/views", "-"):                           AGENTS_EMPTY_FORM,
    ("POST", "/records/views/<id:view_id>/delete", "missing"): AGENTS_MISSING,
    ("POST", "/records/bulk", "-"):                            AGENTS_EMPTY_FORM,
    # problems (web/problems.py): the problem item's form is for the service desk, IT Operations
    # and admins (404 for the rest, as for an item they may not order; 422: empty form); r1 and
    # r2 are no problems, so editing one is a 404 for everyone
    ("GET", "/problems/new", "-"):                             (302, 404, 404, 404, 404, 404, 200, 200, 200),
    ("POST", "/problems/new", "-"):                            (302, 404, 404, 404, 404, 404, 422, 422, 422),
    ("POST", "/requests/<number>/problem", "r1"):              NOBODY,
    ("POST", "/requests/<number>/problem", "r2"):              NOBODY,
    ("POST", "/requests/<number>/problem", "missing"):         NOBODY,
    # changes (web/changes.py): the calendar is for agents (the change board owns an item);
    # a change's window and CIs are edited by its agents (422: empty form; r1 and r2 are no
    # changes, which only a valid form would find out)
    ("GET", "/changes/calendar", "-"):                         AGENTS,
    ("POST", "/requests/<number>/change", "r1"):               RECORD_AGENTS,
    ("POST", "/requests/<number>/change", "r2"):               RECORD_AGENTS,
    ("POST", "/requests/<number>/change", "missing"):          NOBODY,
    # reports (web/reports.py): the reporting role, service owners (managers of a group owning
    # an item) and admins; in this world only oscar, an admin
    ("GET", "/reports", "-"):                                  ADMINS,
    ("GET", "/reports/records.csv", "-"):                      ADMINS,
    ("GET", "/reports/<name>.csv", "volume"):                  ADMINS,
    ("GET", "/reports/<name>.csv", "missing"):                 ADMINS_MISSING,
    # recomputing the figures now: an empty form is the unfiltered view, back to the page
    ("POST", "/reports/refresh", "-"):                         (302, 403, 403, 403, 403, 403, 403, 403, 302),
    # ---------------------------------------------------------------- approvals
    ("GET", "/approvals", "-"):                                ANYONE,
    ("POST", "/approvals/bulk", "-"):                          EMPTY_FORM,
    ("GET", "/approvals/delegation", "-"):                     ANYONE,
    ("POST", "/approvals/delegation", "-"):                    EMPTY_FORM,
    ("GET", "/approvals/<id:approval_id>", "a1"):             SEES_R1,
    ("GET", "/approvals/<id:approval_id>", "a2"):             SEES_R2,
    ("GET", "/approvals/<id:approval_id>", "missing"):        NOBODY,
    # decide: the approver and their delegate; never the requester (SoD), not the admin
    ("POST", "/approvals/<id:approval_id>/approve", "a1"):    (302, 403, 404, 422, 404, 422, 403, 404, 403),
    ("POST", "/approvals/<id:approval_id>/approve", "a2"):    (302, 403, 404, 422, 404, 422, 403, 404, 403),
    ("POST", "/approvals/<id:approval_id>/approve", "missing"): NOBODY,
    ("POST", "/approvals/<id:approval_id>/reject", "a1"):     (302, 403, 404, 422, 404, 422, 403, 404, 403),
    ("POST", "/approvals/<id:approval_id>/reject", "a2"):     (302, 403, 404, 422, 404, 422, 403, 404, 403),
    ("POST", "/approvals/<id:approval_id>/reject", "missing"): NOBODY,
    # hand one approval on: the approver and admins; a delegate may not pass it further
    ("POST", "/approvals/<id:approval_id>/delegate", "a1"):   (302, 403, 404, 422, 404, 403, 403, 404, 422),
    ("POST", "/approvals/<id:approval_id>/delegate", "a2"):   (302, 403, 404, 422, 404, 403, 403, 404, 422),
    ("POST", "/approvals/<id:approval_id>/delegate", "missing"): NOBODY,
    # ---------------------------------------------------------------- queues and tasks
    ("GET", "/queues", "-"):                                   ANYONE,
    ("GET", "/queues/<group_id>", "it-hardware"):              QUEUE_MEMBERS,
    ("GET", "/queues/<group_id>", "missing"):                  NOBODY,
    ("GET", "/tasks/<id:task_id>", "t2"):                     TASK_READERS,
    ("GET", "/tasks/<id:task_id>", "missing"):                NOBODY,
    ("POST", "/tasks/<id:task_id>/claim", "t2"):              TASK_ACTORS,
    ("POST", "/tasks/<id:task_id>/claim", "missing"):         NOBODY,
    ("POST", "/tasks/<id:task_id>/reassign", "t2"):           TASK_ACTORS,
    ("POST", "/tasks/<id:task_id>/reassign", "missing"):      NOBODY,
    ("POST", "/tasks/<id:task_id>/escalate", "t2"):           TASK_ACTORS,
    ("POST", "/tasks/<id:task_id>/escalate", "missing"):      NOBODY,
    ("POST", "/tasks/<id:task_id>/ask", "t2"):                TASK_ACTORS,
    ("POST", "/tasks/<id:task_id>/ask", "missing"):           NOBODY,
    ("POST", "/tasks/<id:task_id>/comment", "t2"):            TASK_ACTORS,
    ("POST", "/tasks/<id:task_id>/comment", "missing"):       NOBODY,
    ("POST", "/tasks/<id:task_id>/complete", "t2"):           TASK_ACTORS,
    ("POST", "/tasks/<id:task_id>/complete", "missing"):      NOBODY,
    # ---------------------------------------------------------------- admin
    ("GET", "/admin/", "-"):                                   ADMINS,
    # the reload previews first (200); the confirmation names the previewed version (422 without)
    ("POST", "/admin/reload/preview", "-"):                    ADMINS,
    ("POST", "/admin/reload", "-"):                            (302, 403, 403, 403, 403, 403, 403, 403, 422),
    ("GET", "/admin/items", "-"):                              ADMINS,
    ("GET", "/admin/items/<item_id>/preview", "laptop"):       ADMINS,
    ("GET", "/admin/items/<item_id>/preview", "missing"):      ADMINS_MISSING,
    ("GET", "/admin/workflows", "-"):                          ADMINS,
    ("GET", "/admin/workflows/<workflow_id>", "laptop"):       ADMINS,
    ("GET", "/admin/workflows/<workflow_id>", "missing"):      ADMINS_MISSING,
    ("GET", "/admin/workflows/<workflow_id>/migrate", "laptop"):  ADMINS,
    ("GET", "/admin/workflows/<workflow_id>/migrate", "missing"): ADMINS_MISSING,
    ("POST", "/admin/workflows/<workflow_id>/migrate", "laptop"): ADMINS_EMPTY_FORM,
    ("POST", "/admin/workflows/<workflow_id>/migrate", "missing"): ADMINS_MISSING,
    ("GET", "/admin/people", "-"):                             ADMINS,
    ("GET", "/admin/groups", "-"):                             ADMINS,
    ("GET", "/admin/outbox", "-"):                             ADMINS,
    ("GET", "/admin/attention", "-"):                          ADMINS,
    # only dead messages replay: the first outbox row is pending, so 409
    ("POST", "/admin/outbox/<id:message_id>/replay", "message"): ADMINS_CONFLICT,
    ("POST", "/admin/outbox/<id:message_id>/replay", "missing"): ADMINS_MISSING,
    # ---------------------------------------------------------------- notifications (personal)
    ("GET", "/notifications", "-"):                            ANYONE,
    ("POST", "/notifications/read-all", "-"):                  (302, 302, 302, 302, 302, 302, 302, 302, 302),
    # opening one: only its owner (bob), who is taken to the record; anyone else 404, admins too
    ("POST", "/notifications/<id:notification_id>/open", "n1"): (302, 404, 404, 302, 404, 404, 404, 404, 404),
    ("POST", "/notifications/<id:notification_id>/open", "missing"): NOBODY,
    ("GET", "/notifications/settings", "-"):                   ANYONE,
    ("POST", "/notifications/settings", "-"):                  EMPTY_FORM,
    # ---------------------------------------------------------------- configuration items
    ("GET", "/assets/mine", "-"):                              ANYONE,
    # the CMDB: agents and admins read; its owner group (it-hardware: frank) and admins change;
    # frank retires ci1 first, so the admin finds it retired already (409)
    ("GET", "/cmdb", "-"):                                     AGENTS,
    ("GET", "/cmdb/<id:ci_id>", "ci1"):                        AGENTS,
    ("GET", "/cmdb/<id:ci_id>", "missing"):                    AGENTS_MISSING,
    ("GET", "/cmdb/new/<type_id>", "ci1"):                     AGENTS,
    ("GET", "/cmdb/new/<type_id>", "missing"):                 AGENTS_MISSING,
    ("POST", "/cmdb/new/<type_id>", "ci1"):                    AGENTS_EMPTY_FORM,
    ("POST", "/cmdb/new/<type_id>", "missing"):                AGENTS_MISSING,
    ("GET", "/cmdb/<id:ci_id>/edit", "ci1"):                   (302, 403, 403, 403, 403, 403, 200, 403, 200),
    ("GET", "/cmdb/<id:ci_id>/edit", "missing"):               AGENTS_MISSING,
    ("POST", "/cmdb/<id:ci_id>/edit", "ci1"):                  (302, 403, 403, 403, 403, 403, 422, 403, 422),
    ("POST", "/cmdb/<id:ci_id>/edit", "missing"):              AGENTS_MISSING,
    ("POST", "/cmdb/<id:ci_id>/relate", "ci1"):                AGENTS_EMPTY_FORM,
    ("POST", "/cmdb/<id:ci_id>/relate", "missing"):            AGENTS_MISSING,
    ("POST", "/cmdb/<id:ci_id>/unrelate", "ci1"):              AGENTS_EMPTY_FORM,
    ("POST", "/cmdb/<id:ci_id>/unrelate", "missing"):          AGENTS_MISSING,
    ("POST", "/cmdb/<id:ci_id>/retire", "ci1"):                (302, 403, 403, 403, 403, 403, 302, 403, 409),
    ("POST", "/cmdb/<id:ci_id>/retire", "missing"):            AGENTS_MISSING,
    # ---------------------------------------------------------------- the JSON API (web/api/)
    # the browsers here carry a session cookie: anonymous is a 401 (problem+json, no redirect);
    # a POST carries a form, not JSON: who may act gets 415, after the same refusals as the pages
    ("GET", "/api/v1/catalog", "-"):                           API_ANYONE,
    ("GET", "/api/v1/catalog/<item_id>", "laptop"):            API_ANYONE,
    ("GET", "/api/v1/catalog/<item_id>", "change"):            (401, 404, 404, 404, 404, 404, 200, 200, 200),
    ("GET", "/api/v1/catalog/<item_id>", "missing"):           API_NOBODY,
    ("GET", "/api/v1/requests", "-"):                          API_ANYONE,
    ("POST", "/api/v1/requests", "-"):                         (401, 415, 415, 415, 415, 415, 415, 415, 415),
    ("GET", "/api/v1/requests/<number>", "r1"):                (401, 200, 404, 200, 404, 200, 200, 404, 200),
    ("GET", "/api/v1/requests/<number>", "r2"):                (401, 200, 404, 200, 404, 200, 200, 404, 200),
    ("GET", "/api/v1/requests/<number>", "missing"):           API_NOBODY,
    # comment: whoever sees the request (415: a form); cancel: as on the page
    ("POST", "/api/v1/requests/<number>/comments", "r1"):      API_VIEWERS,
    ("POST", "/api/v1/requests/<number>/comments", "r2"):      API_VIEWERS,
    ("POST", "/api/v1/requests/<number>/comments", "missing"): API_NOBODY,
    ("POST", "/api/v1/requests/<number>/cancel", "r1"):        (401, 415, 404, 403, 404, 403, 403, 404, 415),
    ("POST", "/api/v1/requests/<number>/cancel", "r2"):        (401, 415, 404, 403, 404, 403, 403, 404, 415),
    ("POST", "/api/v1/requests/<number>/cancel", "missing"):   API_NOBODY,
    ("GET", "/api/v1/approvals", "-"):                         API_ANYONE,
    ("POST", "/api/v1/approvals/<id:approval_id>/approve", "a1"): API_DECIDERS,
    ("POST", "/api/v1/approvals/<id:approval_id>/approve", "a2"): API_DECIDERS,
    ("POST", "/api/v1/approvals/<id:approval_id>/approve", "missing"): API_NOBODY,
    ("POST", "/api/v1/approvals/<id:approval_id>/reject", "a1"): API_DECIDERS,
    ("POST", "/api/v1/approvals/<id:approval_id>/reject", "a2"): API_DECIDERS,
    ("POST", "/api/v1/approvals/<id:approval_id>/reject", "missing"): API_NOBODY,
    # tasks: as on the pages (bob worked r2 and reads its task; acting on it is a 403)
    ("GET", "/api/v1/queues/<group_id>/tasks", "it-hardware"): (401, 404, 404, 404, 404, 404, 200, 404, 200),
    ("GET", "/api/v1/queues/<group_id>/tasks", "missing"):     API_NOBODY,
    ("GET", "/api/v1/tasks/<id:task_id>", "t2"):              (401, 404, 404, 200, 404, 404, 200, 404, 200),
    ("GET", "/api/v1/tasks/<id:task_id>", "missing"):         API_NOBODY,
    ("POST", "/api/v1/tasks/<id:task_id>/claim", "t2"):       API_TASK_ACTORS,
    ("POST", "/api/v1/tasks/<id:task_id>/claim", "missing"):  API_NOBODY,
    ("POST", "/api/v1/tasks/<id:task_id>/complete", "t2"):    API_TASK_ACTORS,
    ("POST", "/api/v1/tasks/<id:task_id>/complete", "missing"): API_NOBODY,
    # delegate, as on the page (the approver and admins; 415: a form)
    ("POST", "/api/v1/approvals/<id:approval_id>/delegate", "a1"): API_DELEGATORS,
    ("POST", "/api/v1/approvals/<id:approval_id>/delegate", "a2"): API_DELEGATORS,
    ("POST", "/api/v1/approvals/<id:approval_id>/delegate", "missing"): API_NOBODY,
    ("POST", "/api/v1/tasks/<id:task_id>/escalate", "t2"):    API_TASK_ACTORS,
    ("POST", "/api/v1/tasks/<id:task_id>/escalate", "missing"): API_NOBODY,
    ("POST", "/api/v1/tasks/<id:task_id>/reassign", "t2"):    API_TASK_ACTORS,
    ("POST", "/api/v1/tasks/<id:task_id>/reassign", "missing"): API_NOBODY,
    # a record's fields and links: its agents (frank's it-hardware, admins); others who see it 403
    ("PATCH", "/api/v1/requests/<number>", "r1"):              API_RECORD_AGENTS,
    ("PATCH", "/api/v1/requests/<number>", "r2"):              API_RECORD_AGENTS,
    ("PATCH", "/api/v1/requests/<number>", "missing"):         API_NOBODY,
    ("POST", "/api/v1/requests/<number>/links", "r1"):         API_RECORD_AGENTS,
    ("POST", "/api/v1/requests/<number>/links", "r2"):         API_RECORD_AGENTS,
    ("POST", "/api/v1/requests/<number>/links", "missing"):    API_NOBODY,
    # (no such link: 404 for the agents)
    ("DELETE", "/api/v1/requests/<number>/links/<kind>/<other>", "r1"):
        (401, 403, 404, 403, 404, 403, 404, 404, 404),
    ("DELETE", "/api/v1/requests/<number>/links/<kind>/<other>", "missing"): API_NOBODY,
    # reopen: the caller and agents; answer: the requester (both refused before the body)
    ("POST", "/api/v1/requests/<number>/reopen", "r1"):        (401, 415, 404, 403, 404, 403, 415, 404, 415),
    ("POST", "/api/v1/requests/<number>/reopen", "missing"):   API_NOBODY,
    ("POST", "/api/v1/requests/<number>/answer", "r1"):        (401, 415, 404, 403, 404, 403, 403, 404, 403),
    ("POST", "/api/v1/requests/<number>/answer", "r2"):        (401, 415, 404, 403, 404, 403, 403, 404, 403),
    ("POST", "/api/v1/requests/<number>/answer", "missing"):   API_NOBODY,
    # the agents' list, configuration items: agents, as /records and /cmdb; knowledge: anyone
    ("GET", "/api/v1/records", "-"):                           API_AGENTS,
    ("GET", "/api/v1/cis", "-"):                               API_AGENTS,
    ("GET", "/api/v1/cis/<id:ci_id>", "ci1"):                  API_AGENTS,
    ("GET", "/api/v1/cis/<id:ci_id>", "missing"):              (401, 403, 404, 403, 404, 404, 404, 404, 404),
    ("GET", "/api/v1/knowledge", "-"):                         API_ANYONE,
    # the catalog's status and reload: admins (reload takes no fields: 415 for a form)
    ("GET", "/api/v1/admin/catalog", "-"):                     API_ADMINS,
    ("POST", "/api/v1/admin/catalog/reload", "-"):             (401, 403, 403, 403, 403, 403, 403, 403, 415),
    # the description of the API and its docs page are public (no data in them)
    ("GET", "/api/v1/openapi.json", "-"):                      EVERYONE,
    ("GET", "/api/docs", "-"):                                 EVERYONE,
    ("GET", "/api/docs/openapi-3.0.json", "-"):                EVERYONE,
    ("GET", "/api/docs/<name>", "swagger"):                    EVERYONE,
    ("GET", "/api/docs/<name>", "missing"):                    (404, 404, 404, 404, 404, 404, 404, 404, 404),
    # ---------------------------------------------------------------- health and metrics (web/health.py)
    # no sign-in; /metrics is DESKFLOW_METRICS=local by default and the test client is 127.0.0.1
    ("GET", "/healthz", "-"):                                  EVERYONE,
    ("GET", "/readyz", "-"):                                   EVERYONE,
    ("GET", "/metrics", "-"):                                  EVERYONE,
    # ---------------------------------------------------------------- API tokens (personal)
    ("GET", "/account/tokens", "-"):                           ANYONE,
    ("POST", "/account/tokens", "-"):                          EMPTY_FORM,
    # revoking one: only its owner (bob); anyone else 404, admins too
    ("POST", "/account/tokens/<id:token_id>/revoke", "k1"):    (302, 404, 404, 302, 404, 404, 404, 404, 404),
    ("POST", "/account/tokens/<id:token_id>/revoke", "missing"): NOBODY,
    # ---------------------------------------------------------------- attachments (f1: alice's, on r1)
    # read by whoever sees r1; deleted by the uploader, r1's agents and admins (422: empty form)
    ("GET", "/attachments/<id:attachment_id>", "f1"):          SEES_R1,
    ("GET", "/attachments/<id:attachment_id>", "missing"):     NOBODY,
    ("GET", "/attachments/<id:attachment_id>/thumbnail", "f1"): SEES_R1,
    ("GET", "/attachments/<id:attachment_id>/thumbnail", "missing"): NOBODY,
    ("POST", "/attachments/<id:attachment_id>/delete", "f1"):  (302, 422, 404, 403, 404, 403, 422, 404, 422),
    ("POST", "/attachments/<id:attachment_id>/delete", "missing"): NOBODY,
    ("GET", "/api/v1/requests/<number>/attachments", "r1"):    (401, 200, 404, 200, 404, 200, 200, 404, 200),
    ("GET", "/api/v1/requests/<number>/attachments", "missing"): API_NOBODY,
    # upload: whoever sees the request (415: not multipart)
    ("POST", "/api/v1/requests/<number>/attachments", "r1"):   API_VIEWERS,
    ("POST", "/api/v1/requests/<number>/attachments", "missing"): API_NOBODY,
    ("GET", "/api/v1/attachments/<id:attachment_id>/content", "f1"):
        (401, 200, 404, 200, 404, 200, 200, 404, 200),
    ("GET", "/api/v1/attachments/<id:attachment_id>/content", "missing"): API_NOBODY,
}


@pytest.fixture(scope="module")
def world(tmp_path_factory, template_db) -> World:
    return build_world(make_app(tmp_path_factory.mktemp("matrix"), template_db))


def route_keys(world: World) -> set[tuple[str, str]]:
    return {(method, rule) for method, rule, _ in routes(world.app)}


def test_every_route_and_method_has_a_policy(world):
    policed = {(method, rule) for method, rule, _ in POLICY}
    problems = [f"new route {method} {rule} ({endpoint}) has no authorization policy"
                for method, rule, endpoint in routes(world.app) if (method, rule) not in policed]
    problems += [f"POLICY names {method} {rule}, which the app no longer has"
                 for method, rule in sorted(policed - route_keys(world))]
    for method, rule, target in POLICY:
        args = set(rule_args(rule))
        if args and (method, rule, "missing") not in POLICY:
            problems.append(f"{method} {rule} has no policy for ids that do not exist ('missing')")
        if not args <= set(world.targets[target]):
            problems.append(f"{method} {rule}: target {target!r} gives no value for {args}")
        if len(POLICY[method, rule, target]) != len(ROLES):
            problems.append(f"{method} {rule} [{target}]: one status per role, in ROLES order")
    assert not problems, "\n".join(problems)


def check_cells(world: World, cells: dict[tuple[str, str, str, str], int]) -> list[str]:
    """Request every cell; return the ones that differ from `cells` (and any 5xx or traceback)."""
    browsers = {role: Browser(world.app, PEOPLE[role]) for role in ROLES}
    wrong: list[str] = []
    # /logout ends the session: do it last for each role
    ordered = sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][2] == "/logout"))
    for (role, method, rule, target), expected in ordered:
        browser = browsers[role]
        url = url_for_rule(rule, world.targets[target])
        if method in ("GET", "POST"):
            response = browser.get(url) if method == "GET" else browser.post(url)
        else:  # PATCH, DELETE (the API): a form with the CSRF token, as a POST
            response = browser.client.open(url, method=method, data={"csrf_token": browser.token})
        body = response.get_data().decode("utf-8", "replace")  # attachments are bytes
        got = response.status_code
        if got != expected or got >= 500 or "Traceback" in body:
            wrong.append(f"{role:6} {method:4} {url:45} [{target}]: expected {expected}, got {got}")
        if rule == "/logout":
            browser.sign_in()
    return wrong


def policy_cells() -> dict[tuple[str, str, str, str], int]:
    return {(role, method, rule, target): status
            for (method, rule, target), statuses in POLICY.items()
            for role, status in zip(ROLES, statuses, strict=True)}


def test_the_matrix(world, capsys):
    cells = policy_cells()
    wrong = check_cells(world, cells)
    per_status = Counter(policy_cells().values())
    with capsys.disabled():
        print(f"\nauthorization matrix: {len(cells)} cells ({len(ROLES)} roles x {len(POLICY)} "
              f"route/method/target rows over {len(route_keys(world))} routes and methods); "
              f"{len(cells) - len(wrong)} match; policy statuses {dict(sorted(per_status.items()))}")
    assert not wrong, f"{len(wrong)} of {len(cells)} cells differ from the policy:\n" + "\n".join(wrong)


# ---------------------------------------------------------------- no leaks in the 404s

TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="[^"]+"')


REFERENCE = re.compile(r"Reference: <code>[^<]+</code>")  # each request's own id (web/logs.py)


def _normalised(body: str, number: str) -> str:
    body = REFERENCE.sub("Reference: <code>?</code>", body)
    return TOKEN.sub('name="csrf_token" value=""', body).replace(number, "REQ-?")


@pytest.mark.parametrize("who", ["peter", "carol", "grace"])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/requests/{}"), ("GET", "/requests/{}/submitted"), ("GET", "/requests/{}/diagram.svg"),
    ("POST", "/requests/{}/comment"), ("POST", "/requests/{}/cancel"), ("POST", "/requests/{}/answer"),
])
def test_someone_elses_request_looks_exactly_like_no_request(world, who, method, path):
    """Changing the number in the URL tells an outsider nothing: same 404, same page."""
    browser = Browser(world.app, who)

    def fetch(number: str) -> tuple[int, str]:
        url = path.format(number)
        response = browser.get(url) if method == "GET" else browser.post(url, {"body": "hello"})
        return response.status_code, _normalised(response.get_data(as_text=True), number)

    assert fetch(world.r1) == fetch(MISSING_NUMBER)
    assert fetch(world.r1)[0] == 404


def test_the_roles_are_who_the_matrix_says(world):
    """Guard the fixtures: if acme's directory changes, the matrix's roles must still hold."""
    from engine import people, permissions
    from web.extensions import db

    assert set(ROLE_NOTES) == set(ROLES)
    with world.app.app_context():
        s = db.session()
        assert people.is_admin(s, "oscar")
        assert not any(people.is_admin(s, p) for p in ("alice", "peter", "bob", "carol", "leo",
                                                       "frank", "grace"))
        assert people.is_member(s, "frank", "it-hardware")
        assert not people.is_member(s, "grace", "it-hardware")
        assert people.is_member(s, "grace", "service-desk")
        from datetime import UTC, datetime

        assert people.delegators_for(s, "leo", datetime.now(UTC)) == ["bob"]
        assert "director" in people.roles_of(s, "carol")
        from engine.models import Approval

        a1 = s.get(Approval, world.a1)
        assert (a1.approver_id, a1.decision) == ("bob", "pending")
        assert permissions.can_decide(s, "leo", a1, datetime.now(UTC))


# ---------------------------------------------------------------- forbidden, with a complete form

def complete_form(world: World, rule: str, target: str, stale: bool) -> dict[str, str]:
    """What the page's form would send: right field names, the version the page showed."""
    number = {"r1": world.r1, "a1": world.r1, "r2": world.r2, "a2": world.r2, "t2": world.r2}
    v = str(lock_version(world, number[target]) + (7 if stale else 0)) if target in number else "1"
    action = rule.rsplit("/", 1)[-1]
    if rule.startswith("/requests/"):
        return {"seen_version": v, "reason": "Not needed.", "body": "Hello.", "answer": "Yes please."}
    if rule.startswith("/approvals/"):
        return {f"{action}-seen_version": v, "decision-seen_version": v, "decision-comment": "Fine.",
                "delegate-to": "dana", "delegate-comment": "Over to you."}
    if rule.startswith("/tasks/"):
        return {f"{action}-seen_version": v, "reassign-to": "heidi", "escalate-reason": "Tier 2.",
                "ask-question": "Which dock?", "comment-body": "Working on it.",
                "answer-serial_number": "SN-1", "complete-comment": "Shipped."}
    return {}


def forbidden_post_cells() -> dict[tuple[str, str, str, str], int]:
    return {cell: status for cell, status in policy_cells().items()
            if cell[1] == "POST" and cell[0] != "anon" and status in (403, 404)}


def changes(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> dict[str, list[str]]:
    """Rows added or removed per table; refusals recorded as security events are expected."""
    out: dict[str, list[str]] = {}
    for table in before.keys() | after.keys():
        old, new = set(before.get(table, ())), set(after.get(table, ()))
        diff = [f"+{row}" for row in new - old if not (table == "audit_events" and "security_denied" in row)]
        diff += [f"-{row}" for row in old - new]
        if diff:
            out[table] = diff
    return out


def send_complete(world: World, cells: dict[tuple[str, str, str, str], int], stale: bool) -> list[str]:
    browsers = {role: Browser(world.app, PEOPLE[role]) for role, *_ in cells}
    wrong = []
    for (role, _method, rule, target), expected in sorted(cells.items()):
        url = url_for_rule(rule, world.targets[target])
        got = browsers[role].post(url, complete_form(world, rule, target, stale)).status_code
        if got != expected:
            wrong.append(f"{role:6} POST {url:45} [{target}]: expected {expected}, got {got}")
    return wrong


def test_forbidden_posts_stay_forbidden_with_a_complete_fresh_form(world):
    """The empty-form matrix proves the refusal; this proves there is no way past it."""
    cells = forbidden_post_cells()
    before = snapshot(world.app)
    wrong = send_complete(world, cells, stale=False)
    assert not wrong, f"{len(wrong)} of {len(cells)} cells:\n" + "\n".join(wrong)
    assert changes(before, snapshot(world.app)) == {}


def test_forbidden_posts_stay_forbidden_with_a_stale_form(world):
    """A stale page changes nothing: who may not act is refused before the version is compared."""
    cells = forbidden_post_cells()
    before = snapshot(world.app)
    wrong = send_complete(world, cells, stale=True)
    assert not wrong, f"{len(wrong)} of {len(cells)} cells:\n" + "\n".join(wrong)
    assert changes(before, snapshot(world.app)) == {}


def test_self_approval_is_refused_and_recorded(world):
    """SoD (test 23): alice's own approval, with a correct form, is a 403 plus a security event."""
    from sqlalchemy import func, select

    from engine.models import AuditEvent

    def denials() -> int:
        with world.service.sessions() as s:
            return s.scalar(select(func.count()).select_from(AuditEvent)
                            .where(AuditEvent.event == "security_denied")) or 0

    before = denials()
    alice = Browser(world.app, "alice")
    v = str(lock_version(world, world.r1))
    response = alice.post(f"/approvals/{world.a1}/approve", {"decision-seen_version": v})
    assert response.status_code == 403
    assert denials() == before + 1


@pytest.mark.parametrize("who", ["alice", "peter", "carol", "frank", "grace", "oscar"])
def test_bulk_approve_is_no_way_around_the_approval_page(world, who):
    """Bulk approval checks each row like the approval page does: nothing is decided."""
    before = snapshot(world.app)
    v = str(lock_version(world, world.r1))
    response = Browser(world.app, who).post("/approvals/bulk", {"ids": str(world.a1),
                                                                f"seen-{world.a1}": v})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "0 of 1 approved." in html
    sees_r1 = SEES_R1[ROLES.index(who)] == 200
    assert re.search(r'<span class="badge text-bg-danger">not (allowed|found)</span>', html)
    assert (world.r1 in html) == sees_r1, "bulk approval must not reveal a request's number"
    assert changes(before, snapshot(world.app)) == {}
