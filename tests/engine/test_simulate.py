"""`deskflow simulate` tells the whole story: priority, SLA and deadlines on the business calendar,
why each approver and branch, the notifications and their recipients, scenarios as input."""

from __future__ import annotations

import pytest

from web.cli import main

LAPTOP = "tests/new-laptop.yaml"
STANDARD = f"{LAPTOP}:Standard laptop approved and delivered"


def _simulate(runner, acme, *args):
    return runner.invoke(main, ["simulate", *args, "--catalog", str(acme.root)])


def _pro_laptop_on_friday_afternoon(runner, acme):
    """Ordered before a weekend and Liberation Day (an `add:`ed holiday of acme's deskflow.yaml)."""
    result = _simulate(runner, acme, "new-laptop", "--as", "alice", "--set", "model=pro16",
                       "--set", "justification=I edit 4K video for marketing.",
                       "--at", "2026-05-01T16:00")
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_simulate_gives_the_priority_and_the_sla_due_on_business_days_with_reasons(runner, acme):
    assert _pro_laptop_on_friday_afternoon(runner, acme)[1:4] == [
        "  Ordered Fri 1 May 2026 16:00 Europe/Amsterdam",
        "  Priority: p3 (Medium): the settings' default priority",
        "  SLA: Resolution due Mon 11 May 2026 16:00: 5 business days (workflow laptop-request's "
        "resolution target) from Fri 1 May 2026 16:00, counted on business hours Mon–Fri "
        "09:00–17:00 Europe/Amsterdam; not counted: Sat 2 May (not a working day), Sun 3 May "
        "(not a working day), Tue 5 May (Liberation Day), Sat 9 May (not a working day), Sun 10 May "
        "(not a working day)",
    ]


def test_simulate_explains_each_approver_and_gives_the_deadline_and_what_a_timeout_does(
        runner, acme):
    lines = _pro_laptop_on_friday_afternoon(runner, acme)
    start = lines.index("  1. manager_approval [approval] (Waiting for your manager)")
    assert lines[start + 1:start + 4] == [
        "       approval manager_approval: bob via requester.manager (any) -> approved",
        "         why: Bob Bakker is who `requester.manager` named for this request",
        "         deadline: Thu 7 May 2026 16:00 Europe/Amsterdam; on timeout: escalate",
    ]
    assert lines[lines.index("       approval director_approval: carol via role:director (any) "
                             "-> approved") + 1:][:2] == [
        "         why: Carol de Vries holds the role director, which the workflow names",
        "         deadline: Wed 6 May 2026 16:00 Europe/Amsterdam; on timeout: remind",
    ]


def test_simulate_gives_a_tasks_queue_and_due_time(runner, acme):
    lines = _pro_laptop_on_friday_afternoon(runner, acme)
    task = "       task prepare in queue it-hardware: 'Laptop pro16 for Alice Jansen' -> done"
    assert lines[lines.index(task) + 1] == "         due: Thu 7 May 2026 16:00 Europe/Amsterdam"


@pytest.mark.parametrize(("model", "decides"), [
    ("pro16", "       decides: to director_approval because `form.model == 'pro16'` held "
              "(form.model = 'pro16')"),
    ("std14", "       decides: to prepare, the last route, because no condition held: "
              "`form.model == 'pro16'` did not hold (form.model = 'std14'), so not "
              "director_approval"),
])
def test_simulate_says_why_a_decision_took_its_branch_with_the_values_it_saw(
        runner, acme, model, decides):
    result = _simulate(runner, acme, "new-laptop", "--as", "alice", "--set", f"model={model}",
                       "--set", "justification=I edit 4K video for marketing.")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[lines.index("  2. check_model [decide] (Checking the model)") + 1] == decides


def test_simulate_explains_the_next_manager_up_when_the_requester_is_the_named_approver(
        runner, acme):
    result = _simulate(runner, acme, "--scenario",
                       "tests/emergency-change.yaml:Rejected by the duty manager", "--as", "oscar")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    approval = ("       approval emergency_approval: dana via person:oscar (next manager up) (any) "
                "-> approved")
    assert lines[lines.index(approval) + 1:][:2] == [
        "         why: `person:oscar` named the requester, the person the request is for, or "
        "someone inactive, so their next manager up, Dana Visser, decides",
        "         deadline: Mon 30 Nov 2026 11:00 Europe/Amsterdam; on timeout: remind",
    ]


def test_simulate_lists_the_emails_and_notifications_with_their_recipients(runner, acme):
    result = _simulate(runner, acme, "--scenario", STANDARD)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[lines.index("  ends: fulfilled"):] == [
        "  ends: fulfilled",
        "  Notifications:",
        "    email approval_requested to bob",
        "    email task_assigned to frank",
        "    email task_assigned to heidi",
        "    email request_update to alice",
        "    in-app approval_needed to bob: Your approval is needed (manager_approval)",
        "  would send 4 email(s) and 0 webhook(s); nothing was sent or stored",
    ]


def test_simulate_lists_a_webhook_with_its_url_and_a_priority_the_item_fixes(runner, acme):
    result = _simulate(runner, acme, "--scenario", "tests/password-unlock.yaml")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[2] == "  Priority: p2 (High): the item fixes it"
    assert "    webhook state.unlock to https://iam.acme.example/hooks/unlock" in lines


def test_simulate_takes_the_requester_answers_and_time_from_a_scenario(runner, acme):
    result = _simulate(runner, acme, "--scenario", STANDARD)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("REQ-000001: new-laptop ordered by alice, workflow laptop-request")
    # the scenario's file-wide default `at`, a Monday; its own expectation is due 2026-12-04 17:00
    assert lines[1:4] == [
        "  Ordered Mon 30 Nov 2026 09:00 Europe/Amsterdam",
        "  Priority: p3 (Medium): the settings' default priority",
        "  SLA: Resolution due Fri 4 Dec 2026 17:00: 5 business days (workflow laptop-request's "
        "resolution target) from Mon 30 Nov 2026 09:00, counted on business hours Mon–Fri "
        "09:00–17:00 Europe/Amsterdam",
    ]
    assert "       task prepare in queue it-hardware: 'Laptop std14 for Alice Jansen' -> done" in lines


def test_as_set_and_at_override_the_scenario(runner, acme):
    result = _simulate(runner, acme, "--scenario", STANDARD, "--as", "dana", "--set",
                       "model=pro16", "--set", "justification=I edit 4K video for marketing.",
                       "--at", "2026-05-04T10:00+00:00")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("REQ-000001: new-laptop ordered by dana, workflow laptop-request")
    assert lines[1] == "  Ordered Mon 4 May 2026 12:00 Europe/Amsterdam"
    assert "       task prepare in queue it-hardware: 'Laptop pro16 for Dana Visser' -> done" in lines


def test_an_item_named_with_its_scenario_is_fine(runner, acme):
    result = _simulate(runner, acme, "new-laptop", "--scenario", STANDARD)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--scenario", "tests/nope.yaml"],
     "deskflow: --scenario tests/nope.yaml: no scenario file tests/nope.yaml in the catalog "
     "(did you mean tests/problem.yaml?)"),
    (["--scenario", "deskflow.yaml"],
     "deskflow: --scenario deskflow.yaml: deskflow.yaml is not one of the catalog's scenario "
     "files, its tests/*.yaml (known: tests/badge-replacement.yaml, tests/emergency-change.yaml, "
     "tests/meeting-room-equipment.yaml, tests/mobile-phone.yaml, tests/monitor-peripherals.yaml, "
     "tests/new-hire-onboarding.yaml, tests/new-laptop.yaml, tests/normal-change.yaml, ...)"),
    (["--scenario", LAPTOP],
     "deskflow: --scenario tests/new-laptop.yaml: the file has 4 scenarios; name one as "
     "tests/new-laptop.yaml:NAME (scenarios: Standard laptop approved and delivered, The Pro "
     "model needs a director too, The manager says no, An unanswered approval escalates to the "
     "manager's manager)"),
    (["--scenario", f"{LAPTOP}:The manager said no"],
     "deskflow: --scenario tests/new-laptop.yaml:The manager said no: tests/new-laptop.yaml has "
     "no scenario 'The manager said no' (did you mean The manager says no?)"),
    (["vpn-access", "--scenario", STANDARD],
     f"deskflow: --scenario {STANDARD}: the scenario orders new-laptop, not vpn-access "
     "(leave ITEM out)"),
    (["--as", "alice"], "deskflow: give the ITEM to simulate, or a --scenario that names it"),
    (["new-laptop"], "deskflow: --as PERSON is needed: who orders the item (or give a --scenario)"),
    (["new-laptop", "--as", "alice", "--at", "friday"],
     "deskflow: --at friday: not a date and time (write YYYY-MM-DDTHH:MM, like 2026-05-01T16:00)"),
])
def test_simulate_refuses_a_scenario_or_time_it_cannot_use_as_a_usage_mistake(
        runner, acme, args, message):
    result = _simulate(runner, acme, *args)
    assert result.exit_code == 2
    assert result.output.splitlines() == [message]
