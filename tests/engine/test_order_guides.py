"""Order guides (engine.orders): every included item becomes a record of one order, or none does."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from engine.errors import InvalidInput, NotFound
from engine.models import Order, Request

SHARED = {"cost_center": "CC-1234", "needed_by": "2027-01-04", "team": "engineer"}
LAPTOP = {"model": "std14", "building": "ams-hq", "floor": 4}
ACCESS = {"system": "crm", "role": "crm-read", "reason": "I support the sales team with their pipeline."}
PHONE = {"device": "pixel", "data_plan": "10gb", "building": "ams-hq", "floor": 3}


def counts(service) -> tuple[int, int]:
    with service.sessions() as s:
        return (s.scalar(select(func.count()).select_from(Request)),
                s.scalar(select(func.count()).select_from(Order)))


def test_an_order_creates_one_linked_record_per_included_item(service, clock):
    order = service.order_guide("new-hire", "alice", SHARED,
                                {"new-laptop": LAPTOP, "system-access": ACCESS})
    assert order.number == "ORD-000001"
    with service.sessions() as s:
        view = service.order(s, order.number, "alice", clock())
        assert [c.item_id for c in view.children] == ["new-laptop", "system-access"]
        laptop, access = view.children
        assert {c.order_id for c in view.children} == {order.id}
        assert laptop.answers["cost_center"] == "CC-1234"  # a shared answer
        assert laptop.answers["needed_by"] == "2027-01-04"
        assert access.answers["level"] == "read"  # fixed by the guide
        assert "cost_center" not in access.answers or access.answers.get("cost_center") is None
        assert laptop.state == "manager_approval"  # the workflow started as usual
        assert view.status == "open" and view.summary == "0 of 2 done"
        assert s.get(Order, order.id).answers == SHARED


def test_a_condition_decides_whether_an_item_is_included(service, clock):
    engineer = service.order_guide("new-hire", "alice", SHARED,
                                   {"new-laptop": LAPTOP, "system-access": ACCESS,
                                    "mobile-phone": PHONE})
    sales = service.order_guide("new-hire", "alice", {**SHARED, "team": "sales"},
                                {"new-laptop": LAPTOP, "system-access": ACCESS,
                                 "mobile-phone": PHONE})
    with service.sessions() as s:
        assert [c.item_id for c in service.order(s, engineer.number, "alice", clock()).children] \
            == ["new-laptop", "system-access"]
        assert [c.item_id for c in service.order(s, sales.number, "alice", clock()).children] \
            == ["new-laptop", "mobile-phone", "system-access"]


def test_one_items_bad_answer_creates_no_record_at_all(service):
    with pytest.raises(InvalidInput) as exc:
        service.order_guide("new-hire", "alice", {**SHARED, "team": "sales"},
                            {"new-laptop": LAPTOP, "mobile-phone": PHONE,
                             "system-access": {**ACCESS, "reason": "short"}})
    assert exc.value.fields == {"system-access--reason": ["Must be at least 20 characters."]}
    assert counts(service) == (0, 0)


def test_a_missing_answer_of_every_item_is_reported_at_once(service):
    with pytest.raises(InvalidInput) as exc:
        service.order_guide("new-hire", "alice", SHARED, {"new-laptop": {}, "system-access": {}})
    assert sorted(exc.value.fields) == ["new-laptop--building", "new-laptop--floor",
                                        "new-laptop--model", "system-access--reason",
                                        "system-access--role", "system-access--system"]
    assert counts(service) == (0, 0)


def test_bad_shared_answers_are_reported_by_question(service):
    with pytest.raises(InvalidInput) as exc:
        service.order_guide("new-hire", "alice", {**SHARED, "cost_center": "1234", "team": "boss"},
                            {"new-laptop": LAPTOP, "system-access": ACCESS})
    assert exc.value.fields == {"cost_center": ["Must match the pattern ^CC-[0-9]{4}$."],
                                "team": ["boss is not one of the choices."]}
    assert counts(service) == (0, 0)


def test_the_orders_state_sums_up_its_records(service, clock):
    order = service.order_guide("new-hire", "alice", SHARED,
                                {"new-laptop": LAPTOP, "system-access": ACCESS})
    with service.sessions() as s:
        first, second = (c.number for c in service.order(s, order.number, "alice", clock()).children)
    service.cancel(first, "alice", "Not needed after all.")
    with service.sessions() as s:
        view = service.order(s, order.number, "alice", clock())
        assert (view.status, view.summary, view.outcomes) == ("open", "1 of 2 done", {"cancelled": 1})
    service.cancel(second, "alice")
    with service.sessions() as s:
        view = service.order(s, order.number, "alice", clock())
        assert (view.status, view.summary, view.outcomes) == ("closed", "2 of 2 done", {"cancelled": 2})


def test_only_those_who_may_see_it_find_an_order(service, clock):
    order = service.order_guide("new-hire", "alice", SHARED,
                                {"new-laptop": LAPTOP, "system-access": ACCESS})
    with service.sessions() as s:
        with pytest.raises(NotFound, match="no order ORD-000001"):
            service.order(s, order.number, "peter", clock())
        with pytest.raises(NotFound, match="no order ORD-999999"):
            service.order(s, "ORD-999999", "alice", clock())


def test_an_unknown_guide_is_not_found(service):
    with pytest.raises(NotFound, match="no order guide nope"):
        service.order_guide("nope", "alice", SHARED, {})


def test_an_item_the_person_may_not_order_is_left_out_as_the_page_leaves_it(
        service, sessions, acme_path, tmp_path, clock):
    import shutil

    from catalog.loader import load_catalog
    from engine.service import RequestService

    root = tmp_path / "acme"
    shutil.copytree(acme_path, root)
    (root / "guides" / "desk.yaml").write_text(
        "kind: Guide\nid: desk\nname: Desk set-up\nsummary: A laptop, and a problem record\n"
        "items:\n  - item: new-laptop\n  - item: problem\n")
    cat = load_catalog(root)
    assert cat.ok, [e.render() for e in cat.errors]
    service = RequestService(sessions, lambda: cat, clock)  # the fixture's synced the directory
    order = service.order_guide("desk", "alice", {},
                                {"new-laptop": {**LAPTOP, "cost_center": "CC-1234"}})
    with sessions() as s:  # problem is visible to IT only: alice's order holds the laptop alone
        assert [c.item_id for c in service.order(s, order.number, "alice", clock()).children] \
            == ["new-laptop"]
