"""Canned responses in a real browser: choosing one fills the comment box, under the CSP."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.e2e.test_flow import no_console_errors, sign_in


def test_choosing_a_canned_response_fills_the_reply_box(open_context, screens, live):
    context, console = open_context()
    frank: Any = context.new_page()
    sign_in(frank, "frank")
    number = live.seeded["incident claimed by frank"]
    frank.goto(f"/requests/{number}")
    box = frank.get_by_label("Comment", exact=True)
    expect(box).to_have_value("")
    frank.get_by_label("Insert a canned response").select_option(label="Ask for a screenshot")
    expect(box).to_have_value(re.compile(
        rf"^Hello Alice Jansen,\n\nthank you for {number}\. Could you send us a screenshot"))
    expect(box).to_have_value(re.compile(r"Regards,\nFrank [A-Za-z]+, Acme Service Desk\n$"))
    expect(box).to_be_focused()
    screens.shot(frank, "response-inserted")

    # a second choice is added below what is there, and the select is ready again
    frank.get_by_label("Insert a canned response").select_option(label="We are working on it")
    expect(box).to_have_value(re.compile(r"Acme Service Desk\n\nHello Alice Jansen,\n\nwe have picked up"))
    expect(frank.get_by_label("Insert a canned response")).to_have_value("")

    frank.get_by_role("button", name="Add comment").click()
    expect(frank.locator(".df-comment-body").last).to_contain_text("we have picked up")
    no_console_errors(console)
