"""The service desk in a real browser: a phone incident escalated to tier 2 becomes a problem and
a known error, and the next caller sees its workaround on the incident form."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.test_flow import no_console_errors, sign_in

TITLE = "Outlook asks for the password every hour"
WORKAROUND = "Sign in to Outlook on the web until the mail client update is rolled out."


def test_a_phone_incident_becomes_a_known_error_the_next_caller_sees(open_context, screens, live):
    agents, agent_console = open_context()
    frank: Any = agents.new_page()
    frank.on("dialog", lambda dialog: dialog.accept())

    # Frank (service desk) logs Leo's phone call
    sign_in(frank, "frank")
    frank.goto("/log")
    frank.get_by_role("link", name="Report an incident").click()
    expect(frank.get_by_label("Channel")).to_have_value("phone")
    frank.get_by_label("Order for").select_option("leo")
    frank.get_by_label("What is wrong?").fill(TITLE)
    frank.get_by_label("Affected service").select_option(label="Email and calendar")
    frank.get_by_label("Describe the problem").fill(
        "Since Monday Outlook prompts for the password every hour, on every laptop of the team.")
    frank.get_by_role("button", name="Submit request").click()
    frank.wait_for_url(re.compile(r"/requests/REQ-\d+/submitted$"))
    number = re.search(r"REQ-\d+", frank.url).group(0)  # type: ignore[union-attr]

    # ...and escalates it to tier 2 (IT Operations) from the service desk's queue
    frank.goto("/queues/service-desk")
    frank.get_by_role("row").filter(has_text=number).get_by_role("link", name=TITLE).click()
    frank.get_by_label("Why").fill("Looks like a mail server setting; needs IT Operations.")
    frank.get_by_role("button", name="Escalate").click()
    expect(frank.get_by_text(f"{number} went to the next tier.")).to_be_visible()
    screens.shot(frank, "escalated")

    # Heidi (tier 2) creates a problem from the incident, prefilled from it
    heidi: Any = open_context()[0].new_page()
    sign_in(heidi, "heidi")
    heidi.goto(f"/requests/{number}")
    heidi.get_by_role("link", name="Create problem").click()
    expect(heidi.get_by_label("What goes wrong?")).to_have_value(TITLE)
    expect(heidi.get_by_label("Service")).to_have_value("email")
    heidi.get_by_role("button", name="Create problem").click()
    expect(heidi.get_by_text(re.compile(rf"Problem REQ-\d+ is open, linked to {number}\."))).to_be_visible()
    expect(heidi.locator(".df-record")).to_contain_text(number)

    # ...and marks it a known error with a workaround
    heidi.get_by_label("Workaround", exact=True).fill(WORKAROUND)
    heidi.get_by_label("Known error: publish the workaround to callers").check()
    heidi.get_by_role("button", name="Save problem").click()
    expect(heidi.locator(".df-known-error-badge")).to_be_visible()
    screens.shot(heidi, "known-error")

    # Carol reports an incident: choosing the same service shows the workaround, and only it
    callers, caller_console = open_context()
    carol: Any = callers.new_page()
    sign_in(carol, "carol")
    carol.goto("/items/report-incident")
    box = carol.locator("[data-df-known-errors]")
    expect(box).to_be_hidden()
    carol.get_by_label("Affected service").select_option(label="Email and calendar")
    expect(box).to_be_visible()
    expect(carol.get_by_text(f"Known error: {TITLE} — Workaround: {WORKAROUND}")).to_be_visible()
    expect(carol.get_by_text("Known error: VPN drops every 30 minutes on Wi-Fi")).to_be_hidden()
    carol.get_by_label("Affected service").select_option(label="Wi-Fi, VPN or network")
    expect(carol.get_by_text(f"Known error: {TITLE}")).to_be_hidden()
    expect(carol.get_by_text("Known error: VPN drops every 30 minutes on Wi-Fi")).to_be_visible()
    screens.shot(carol, "workaround-on-the-form")
    no_console_errors(agent_console, caller_console)
