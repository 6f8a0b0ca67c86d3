"""Ordering with a file in a real browser: the incident form's screenshots field, sent as
multipart, shown on the record as a thumbnail and a download link."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from PIL import Image
from playwright.sync_api import expect

from tests.e2e.test_flow import no_console_errors, sign_in


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 200), "teal").save(out, "PNG")
    return out.getvalue()


def test_an_incident_with_a_screenshot(open_context, screens, live):
    ctx, console = open_context()
    alice: Any = ctx.new_page()
    sign_in(alice, "alice")
    alice.goto("/items/report-incident")
    alice.get_by_label("What is wrong?").fill("The CRM shows an error")
    alice.get_by_label("Affected service").select_option(label="Email and calendar")
    alice.get_by_label("Describe the problem").fill(
        "Opening a customer shows error 500 since this morning, for everyone in sales.")
    files = alice.get_by_label("Screenshots or logs")
    files.set_input_files([{"name": "error.png", "mimeType": "image/png", "buffer": png()},
                           {"name": "console.log", "mimeType": "text/plain",
                            "buffer": b"GET /customers/7 500\n"}])
    screens.shot(alice, "files-chosen")
    alice.get_by_role("button", name="Submit request").click()
    alice.wait_for_url(re.compile(r"/requests/REQ-\d{6}/submitted$"))
    number = alice.locator(".df-number").inner_text()

    alice.goto(f"/requests/{number}")
    answer = alice.locator(".df-answer-files")
    expect(answer.get_by_role("link", name="error.png")).to_be_visible()
    expect(answer.get_by_role("link", name="console.log")).to_be_visible()
    expect(answer.locator("img.df-thumb")).to_have_count(1)
    assert answer.locator("img.df-thumb").evaluate("img => img.naturalWidth") > 0
    screens.shot(alice, "record-with-files")
    with alice.expect_download() as download:
        answer.get_by_role("link", name="console.log").click()
    assert download.value.suggested_filename == "console.log"
    assert Path(download.value.path()).read_bytes() == b"GET /customers/7 500\n"
    no_console_errors(console)
