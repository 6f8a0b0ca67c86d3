"""The whole flow in a real browser: order, approve twice, fulfil, see it delivered; and phone width."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from web.demo import DEMO_PASSWORD

JUSTIFICATION = "I edit 4K video for the sales kick-off and the standard model stutters."


def sign_in(page: Any, who: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(who)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def main_nav(page: Any) -> Any:
    return page.get_by_role("navigation", name="Main")


def no_console_errors(*consoles: Any) -> None:
    errors = [e for c in consoles for e in c.errors]
    assert not errors, "console errors or CSP violations:\n" + "\n".join(errors)


def test_order_approve_fulfil(open_context, screens, live):
    alice_ctx, alice_console = open_context()
    alice = alice_ctx.new_page()

    # alice signs in and opens the catalog
    sign_in(alice, "alice")
    expect(alice.get_by_role("heading", level=1)).to_be_visible()
    laptop = alice.get_by_role("link", name=re.compile("New laptop"))
    expect(laptop).to_be_visible()
    screens.shot(alice, "catalog")

    # New laptop: the justification is hidden until the Pro 16 model is chosen
    laptop.click()
    alice.wait_for_url("**/items/new-laptop")
    justification = alice.locator('[data-field-wrap="justification"]')
    expect(justification).to_be_hidden()
    screens.shot(alice, "laptop-form")
    alice.get_by_label("Model", exact=True).select_option("pro16")
    expect(justification).to_be_visible()
    screens.shot(alice, "justification-shown")

    # too short: the server answers with an inline error next to the field
    alice.get_by_label("Why do you need the Pro model?").fill("I want it.")
    alice.get_by_label("Cost center").fill("CC-1234")
    alice.get_by_label("Floor").fill("4")
    alice.get_by_role("button", name="Submit request").click()
    error = justification.locator("#justification-error")
    expect(error).to_have_text(re.compile("at least 20 characters"))
    expect(alice.get_by_label("Why do you need the Pro model?")).to_have_attribute("aria-invalid", "true")
    expect(alice.locator("#df-error-summary")).to_be_visible()
    expect(justification).to_be_visible()  # still shown: the choice of model was kept
    screens.shot(alice, "inline-error")

    # fixed: the confirmation gives the request number
    alice.get_by_label("Why do you need the Pro model?").fill(JUSTIFICATION)
    alice.get_by_label("Desk or room").fill("4.12")
    alice.get_by_role("button", name="Submit request").click()
    alice.wait_for_url(re.compile(r"/requests/REQ-\d{6}/submitted$"))
    number = alice.locator(".df-number").inner_text()
    assert re.fullmatch(r"REQ-\d{6}", number)
    expect(alice.get_by_role("heading", name=re.compile("your request is in"))).to_be_visible()
    expect(alice.locator(".df-next")).to_have_text("Waiting for your manager")
    screens.shot(alice, "confirmation")

    # bob, her manager: the badge, the inbox, the approval
    bob_ctx, bob_console = open_context()
    bob = bob_ctx.new_page()
    sign_in(bob, "bob")
    badge = main_nav(bob).locator(".badge")
    expect(badge).to_have_text(re.compile(r"^\d+$"))
    assert int(badge.inner_text()) >= 1
    before = int(badge.inner_text())
    main_nav(bob).get_by_role("link", name=re.compile("^Approvals")).click()
    bob.wait_for_url("**/approvals")
    row = bob.get_by_role("row").filter(has_text=number)
    expect(row).to_contain_text("Pro 16-inch")
    expect(row).to_contain_text(JUSTIFICATION)
    screens.shot(bob, "bob-inbox")
    row.get_by_role("link", name=number).click()
    bob.get_by_label("Comment", exact=True).fill("Fine by me; a director decides on the Pro.")
    bob.get_by_role("button", name="Approve").click()
    bob.wait_for_url("**/approvals")
    expect(bob.get_by_role("alert").filter(has_text=f"Approved {number}.")).to_be_visible()
    expect(bob.get_by_role("row").filter(has_text=number)).to_have_count(0)
    if before > 1:
        expect(badge).to_have_text(str(before - 1))
    else:
        expect(badge).to_have_count(0)
    screens.shot(bob, "bob-approved")

    # the workflow now needs a director for the Pro 16 (laptop-request: check_model -> director_approval)
    carol_ctx, carol_console = open_context()
    carol = carol_ctx.new_page()
    sign_in(carol, "carol")
    carol.goto("/approvals")
    director_row = carol.get_by_role("row").filter(has_text=number)
    director_row.get_by_role("link", name=number).click()
    expect(carol.get_by_role("main")).to_contain_text("Waiting for a director to approve the Pro 16-inch")
    carol.get_by_role("button", name="Approve").click()
    carol.wait_for_url("**/approvals")
    expect(carol.get_by_role("alert").filter(has_text=f"Approved {number}.")).to_be_visible()
    screens.shot(carol, "director-approved")

    # frank, in IT Hardware: the queue, claim, complete with a serial number
    frank_ctx, frank_console = open_context()
    frank = frank_ctx.new_page()
    sign_in(frank, "frank")
    main_nav(frank).get_by_role("link", name="Queues").click()
    frank.get_by_role("link", name="IT Hardware").click()
    frank.wait_for_url("**/queues/it-hardware")
    task_row = frank.get_by_role("row").filter(has_text=number)
    expect(task_row).to_contain_text("unassigned")
    screens.shot(frank, "queue")
    task_row.get_by_role("button", name=re.compile("^Claim")).click()
    frank.wait_for_url(re.compile(r"/tasks/\d+$"))
    expect(frank.get_by_role("alert").filter(has_text=f"You took {number}.")).to_be_visible()
    frank.get_by_label("Serial number").fill("PF3X9K2L")
    frank.get_by_label("Shipped with a docking station").check()
    frank.get_by_label("Closing comment").fill("Imaged and shipped to Amsterdam HQ, desk 4.12.")
    screens.shot(frank, "task")
    frank.get_by_role("button", name="Complete").click()
    frank.wait_for_url("**/queues/it-hardware")
    expect(frank.get_by_role("alert").filter(has_text="is done.")).to_be_visible()
    expect(frank.get_by_role("row").filter(has_text=number)).to_have_count(0)
    screens.shot(frank, "completed")

    # alice sees it delivered, with the timeline
    alice.goto(f"/requests/{number}")
    expect(alice.locator(".df-state")).to_have_text("Delivered")
    expect(alice.get_by_text("Closed · fulfilled")).to_be_visible()
    timeline = alice.locator(".df-timeline")
    for entry in ("Submitted", "Approved", "Task completed", "Now: Delivered"):
        expect(timeline).to_contain_text(entry)
    expect(alice.locator(".df-approvals")).to_contain_text("Fine by me; a director decides on the Pro.")
    expect(alice.locator(".df-approvals")).to_contain_text("Bob Bakker")
    expect(alice.locator(".df-approvals")).to_contain_text("Carol de Vries")
    expect(alice.locator(".df-tasks")).to_contain_text("done")
    screens.shot(alice, "delivered")
    main_nav(alice).get_by_role("link", name="My requests").click()
    expect(alice.get_by_role("row").filter(has_text=number)).to_contain_text("Closed")

    no_console_errors(alice_console, bob_console, carol_console, frank_console)
    # the only 4xx: the 422 of the too-short submission (and Chromium asking for /favicon.ico)
    expected_4xx(alice_console, bob_console, carol_console, frank_console,
                 allowed=[r"status of 422 .*/items/new-laptop\)$"])
    assert any("422" in e for e in alice_console.expected), "the 422 form should have been seen"
    assert screens.count >= 12


def expected_4xx(*consoles: Any, allowed: list[str]) -> None:
    """Every 4xx the browser logged is one of `allowed` (regexes) or the missing favicon."""
    patterns = [re.compile(p) for p in [*allowed, r"status of 404 .*/favicon\.ico\)$"]]
    odd = [e for c in consoles for e in c.expected if not any(p.search(e) for p in patterns)]
    assert not odd, "unexpected 4xx responses:\n" + "\n".join(odd)


def overflow(page: Any) -> int:
    """How far the page is wider than the window (0: no horizontal scrolling)."""
    return int(page.evaluate(
        "Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"))


def test_phone_width(open_context, screens, live):
    context, console = open_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                    has_touch=True, device_scale_factor=2)
    page = context.new_page()
    sign_in(page, "alice")

    # the catalog, and the collapsed navigation
    assert overflow(page) <= 0, "the catalog scrolls sideways at 390 px"
    toggler = page.get_by_role("button", name="Toggle navigation")
    my_requests = main_nav(page).get_by_role("link", name="My requests")
    expect(toggler).to_be_visible()
    expect(toggler).to_have_attribute("aria-expanded", "false")
    expect(my_requests).to_be_hidden()
    screens.shot(page, "catalog")
    toggler.click()
    expect(my_requests).to_be_visible()
    expect(toggler).to_have_attribute("aria-expanded", "true")
    # Bootstrap ignores the toggler while the menu is still sliding open
    expect(page.locator("#nav")).to_have_class(re.compile(r"\bcollapse\b.*\bshow\b"))
    screens.shot(page, "nav-open")
    toggler.click()
    expect(my_requests).to_be_hidden()

    # an order form and a request page (with its timeline and diagram)
    page.goto("/items/new-laptop")
    assert overflow(page) <= 0, "the order form scrolls sideways at 390 px"
    screens.shot(page, "order-form")
    for number in sorted(set(live.seeded.values()))[:3]:
        page.goto(f"/requests/{number}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(number)
        assert overflow(page) <= 0, f"{number}'s page scrolls sideways at 390 px"
    screens.shot(page, "request")
    page.goto("/requests")
    assert overflow(page) <= 0, "my requests scrolls sideways at 390 px"

    no_console_errors(console)
    expected_4xx(console, allowed=[])
