"""Workflow diagrams as Mermaid text and as SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from catalog.loader import load_catalog
from workflows.diagram import to_mermaid, to_svg
from workflows.errors import UnknownState

SVG = "{http://www.w3.org/2000/svg}"

HOSTILE = """\
kind: Workflow
id: tiny
start: check
states:
  check:
    label: "<script>alert('x')</script> & \\"quoted\\""
    decide:
      - {when: "form.n > 1", goto: end}
      - {goto: small}
  end: {end: fulfilled, label: "Big; #1"}
  small: {end: rejected}
"""


def _states(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    return {g.get("data-state", ""): g for g in root.iter(f"{SVG}g")
            if "state" in (g.get("class") or "").split()}


def _rect(g: ET.Element) -> tuple[float, float, float, float]:
    r = g.find(f"{SVG}rect")
    assert r is not None
    x, y = float(r.get("x", 0)), float(r.get("y", 0))
    return x, y, x + float(r.get("width", 0)), y + float(r.get("height", 0))


def test_mermaid_of_the_laptop_workflow(acme):
    text = to_mermaid(acme.workflow("laptop-request"))
    assert text.startswith("stateDiagram-v2\n")
    for line in [
        'state "Waiting for your manager" as manager_approval',
        "[*] --> manager_approval",
        "manager_approval --> check_model: approved",
        "manager_approval --> rejected: rejected",
        "check_model --> director_approval: form.model == 'pro16'",
        "check_model --> prepare: otherwise",
        "director_approval --> prepare: approved",
        "prepare --> delivered: done",
        "delivered --> [*]",
        "rejected --> [*]",
        "class delivered endState",
    ]:
        assert f"    {line}\n" in text
    assert "cancel" not in text
    assert "current" not in text


def test_mermaid_merges_edges_and_names_waits(acme):
    assert "    assign --> fulfilled: assigned | purchased\n" in \
        to_mermaid(acme.workflow("licence-request"))
    assert "    confirm_window --> closed: after 3 business days\n" in \
        to_mermaid(acme.workflow("incident"))


def test_mermaid_escapes_labels_and_keywords(make_catalog):
    wf = load_catalog(make_catalog(HOSTILE)).workflow("tiny")
    assert to_mermaid(wf, current="end") == """\
stateDiagram-v2
    classDef endState fill:#f1f5f9,stroke:#1e293b,stroke-width:3px
    classDef current fill:#fef3c7,stroke:#dc2626,stroke-width:3px
    state "#lt;script#gt;alert('x')#lt;/script#gt; #amp; #quot;quoted#quot;" as check
    state "Big#59; #35;1" as S_end
    state "Small" as small
    [*] --> check
    check --> S_end: form.n #gt; 1
    check --> small: otherwise
    S_end --> [*]
    small --> [*]
    class S_end endState
    class small endState
    class S_end current
"""


def test_mermaid_shows_cancelled_only_when_the_workflow_declares_it(acme, desk):
    assert "cancelled" not in to_mermaid(acme.workflow("laptop-request"))
    text = to_mermaid(desk.workflow("review-loop"))
    assert '    state "Withdrawn" as cancelled\n' in text
    assert "--> cancelled" not in text
    assert "    check --> review: form.rounds #gt; 1\n" in text
    assert "    count_round --> check: next\n" in text


def test_a_cancelled_request_shows_where_it_ended(acme):
    text = to_mermaid(acme.workflow("laptop-request"), current="cancelled")
    assert '    state "Cancelled" as cancelled\n' in text
    assert text.endswith("    class cancelled current\n")


def test_the_current_state_must_exist(acme):
    with pytest.raises(UnknownState) as info:
        to_mermaid(acme.workflow("laptop-request"), current="prepared")
    assert str(info.value) == "workflow laptop-request has no state prepared (did you mean prepare?)"
    with pytest.raises(UnknownState):
        to_svg(acme.workflow("laptop-request"), current="prepared")


@pytest.mark.parametrize("wf_id", ["access-request", "automated-unlock", "facilities-request",
                                   "hardware-request", "identity-request", "incident",
                                   "laptop-request", "licence-request", "normal-change",
                                   "offboarding", "onboarding", "owner-approval",
                                   "standard-change"])
def test_svg_of_every_acme_workflow(acme, wf_id):
    wf = acme.workflow(wf_id)
    svg = to_svg(wf, current=wf.start)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None and wf.id in (title.text or "")
    states = _states(svg)
    assert set(states) == set(wf.state_names) - {"cancelled"}
    for name, g in states.items():
        assert wf.state(name).label in " ".join(g.itertext()) or not wf.state(name).label
    assert float(root.get("width", 0)) <= 960
    boxes = sorted(_rect(g) for g in states.values())
    for i, (ax0, ay0, ax1, ay1) in enumerate(boxes):
        for bx0, by0, bx1, by1 in boxes[i + 1:]:
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, "boxes overlap"
    assert len(root.findall(f".//{SVG}path[@class='edge']")) + \
        len(root.findall(f".//{SVG}path[@class='edge back']")) == \
        len({(t.source, t.dest) for t in wf.transitions() if t.trigger != "cancel"})


def test_svg_escapes_labels_from_yaml(make_catalog):
    wf = load_catalog(make_catalog(HOSTILE)).workflow("tiny")
    svg = to_svg(wf)
    assert "<script" not in svg
    root = ET.fromstring(svg)
    assert not [e for e in root.iter() if e.tag.endswith("script")]
    title = _states(svg)["check"].find(f"{SVG}title")
    assert title is not None
    assert title.text == "<script>alert('x')</script> & \"quoted\" (check, decision)"
    assert "form.n &gt; 1" in svg


def test_svg_highlights_the_current_state(acme):
    svg = to_svg(acme.workflow("laptop-request"), current="director_approval")
    current = [name for name, g in _states(svg).items() if "current" in g.get("class", "").split()]
    assert current == ["director_approval"]
    assert _states(svg)["director_approval"].get("aria-current") == "step"
    assert "current" not in to_svg(acme.workflow("laptop-request"))


def test_svg_marks_end_states(acme):
    states = _states(to_svg(acme.workflow("laptop-request")))
    ends = {name for name, g in states.items() if "end" in g.get("class", "").split()}
    assert ends == {"delivered", "rejected"}


def test_svg_draws_loops_as_back_edges_and_a_declared_cancelled(desk):
    svg = to_svg(desk.workflow("review-loop"), current="ask")
    root = ET.fromstring(svg)
    back = {(p.get("data-source"), p.get("data-dest"))
            for p in root.iter(f"{SVG}path") if "back" in (p.get("class") or "").split()}
    assert back == {("ask", "review"), ("check", "review"), ("count_round", "check")}
    assert set(_states(svg)) == {"review", "ask", "check", "count_round", "finished", "cancelled"}


def test_svg_is_deterministic(acme, acme_path):
    wf = acme.workflow("normal-change")
    again = load_catalog(acme_path).workflow("normal-change")
    assert to_svg(wf, "implement") == to_svg(again, "implement")


def test_two_diagrams_on_one_page_have_distinct_ids(acme):
    def ids(svg: str) -> set[str]:
        return {e.get("id", "") for e in ET.fromstring(svg).iter() if e.get("id")}

    laptop, incident = acme.workflow("laptop-request"), acme.workflow("incident")
    assert not ids(to_svg(laptop)) & ids(to_svg(incident))
    assert not ids(to_svg(laptop)) & ids(to_svg(laptop, current="prepare"))
