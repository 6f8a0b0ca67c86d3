"""Admin → Catalog → Reload in a real browser: the preview shows the diff, the confirmation switches."""

from __future__ import annotations

import re
import shutil
from typing import Any

from playwright.sync_api import expect

from tests.e2e.test_flow import no_console_errors, sign_in


def test_reload_previews_the_diff_and_switches_on_confirmation(open_context, screens, live,
                                                                tmp_path):
    state = live.app.extensions["deskflow"]
    served, copy = state.path, tmp_path / "catalog"
    shutil.copytree(served, copy)
    # the demo's laptop waiting for bob's approval is in manager_approval: remove that state
    shutil.rmtree(copy / "tests", ignore_errors=True)  # its scenarios walk that state
    workflow = copy / "workflows" / "laptop-request.yaml"
    body = workflow.read_text().replace("start: manager_approval", "start: check_model")
    head, rest = body.split("  manager_approval:\n", 1)
    workflow.write_text(head + rest.split("\n\n", 1)[1])
    old = state.catalog.version
    state.path = copy
    try:
        context, console = open_context()
        oscar: Any = context.new_page()
        sign_in(oscar, "oscar")
        oscar.goto("/admin/")
        oscar.get_by_role("button", name="Reload the catalog…").click()
        preview = oscar.locator("#reload-preview")
        expect(preview).to_contain_text("workflow laptop-request")
        removed = preview.locator("tr", has_text="removes state manager_approval")
        expect(removed).to_contain_text(re.compile(r"\d+ open requests? (is|are) in it, on version"))
        expect(oscar.locator("#catalog-version")).to_have_text(old)  # nothing switched yet
        screens.shot(oscar, "preview")
        new = oscar.locator('input[name="fingerprint"]').get_attribute("value")
        assert new and new != old and state.catalog.version == old

        oscar.get_by_role("button", name=f"Switch to version {new}").click()
        expect(oscar.locator("#catalog-version")).to_have_text(new)
        expect(oscar.get_by_text(f"Catalog reloaded: version {new} (was {old}).")).to_be_visible()
        expect(oscar.locator("#reload-preview")).to_have_count(0)
        screens.shot(oscar, "switched")
        assert state.catalog.version == new
        no_console_errors(console)
    finally:
        state.path = served
        state.reload()  # the other browser tests share this app: serve the demo catalog again
