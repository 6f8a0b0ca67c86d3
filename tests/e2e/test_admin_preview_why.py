"""Admin → Items → Preview in a real browser: the why-panel explains the answers tried."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.e2e.test_flow import no_console_errors, sign_in

CONDITION = "form.vpn_profile == 'supplier'"


def test_trying_answers_turns_a_hidden_field_shown_with_its_reason(open_context, screens):
    context, console = open_context()
    oscar: Any = context.new_page()
    sign_in(oscar, "oscar")
    oscar.goto("/admin/items/vpn-access/preview")
    panel = oscar.get_by_role("region", name="Why is each field shown or required?")
    row = panel.locator('tr[data-why="supplier_company"]')
    expect(row.locator(".df-why-status")).to_have_text("hidden")
    expect(row.locator(".df-why-reason")).to_have_text(
        f"hidden because show_if {CONDITION} does not hold (form.vpn_profile = 'standard')")

    oscar.get_by_label("Profile").select_option("supplier")
    oscar.get_by_role("button", name="Try these answers").click()
    expect(panel).to_contain_text("For the answers you tried")
    expect(row.locator(".df-why-status")).to_have_text("shown, required")
    expect(row.locator(".df-why-reason")).to_have_text(
        f"shown because show_if {CONDITION} holds (form.vpn_profile = 'supplier'); "
        f"required because required_if {CONDITION} holds (form.vpn_profile = 'supplier')")
    expect(oscar.get_by_label("Profile")).to_have_value("supplier")  # the answers stay filled in
    expect(oscar.get_by_label("Supplier company")).to_be_visible()
    screens.shot(oscar, "tried")
    no_console_errors(console)
