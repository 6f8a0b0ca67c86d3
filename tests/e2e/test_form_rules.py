"""Form rules in a real browser: required_if marks a field required while it holds; checks
across fields show their message as people type."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.test_flow import no_console_errors, sign_in


def test_required_if_marks_the_field_required_while_it_holds(open_context, screens):
    context, console = open_context()
    page = context.new_page()
    sign_in(page, "alice")
    page.goto("/items/system-access")
    mark = page.locator('[data-field-wrap="access_until"] .text-danger[aria-hidden="true"]')
    field = page.get_by_role("textbox", name="Access until", exact=True)
    expect(mark).to_have_count(0)
    expect(field).not_to_have_attribute("required", "")
    expect(field).not_to_have_attribute("aria-required", "true")

    # as an always-required field: an asterisk after the label, hidden from its accessible name
    page.get_by_label("Access level").select_option("admin")
    expect(mark).to_have_text(" *")
    expect(page.locator("label[for=access_until] + span.text-danger")).to_have_count(1)
    expect(field).to_have_attribute("required", "")
    expect(field).to_have_attribute("aria-required", "true")
    screens.shot(page, "required")

    page.get_by_label("Access level").select_option("read")
    expect(mark).to_have_count(0)
    expect(field).not_to_have_attribute("required", "")
    expect(field).not_to_have_attribute("aria-required", "true")
    no_console_errors(console)


def test_a_check_across_fields_shows_its_message_next_to_its_field_live(open_context, screens):
    context, console = open_context()
    page = context.new_page()
    sign_in(page, "alice")
    page.goto("/items/new-hire-onboarding")
    message = page.locator('[data-field-wrap="contract_end"] [data-check-message]')
    page.get_by_label("Start date").fill("2027-01-04")
    page.get_by_label("Contract", exact=True).select_option("fixed-term")
    page.get_by_label("Contract end date").fill("2026-12-31")
    expect(message).to_have_text("The contract cannot end before the start date.")
    screens.shot(page, "check-message")
    page.get_by_label("Contract end date").fill("2027-06-30")
    expect(message).to_have_count(0)
    no_console_errors(console)
