"""The acme example catalog the suite runs on: where it is, and valid answers for every item."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACME = ROOT / "examples" / "acme"

#: valid answers for every acme item (requester alice unless noted); copy before changing one
ACME_ANSWERS: dict[str, dict[str, Any]] = {
    "system-access": {"system": "crm", "role": "crm-read", "level": "read",
                      "reason": "I support the sales team with their pipeline."},
    "shared-folder": {"site_url": "https://acme.sharepoint.com/sites/sales", "access": "read",
                      "approver": "carol"},
    "shared-mailbox": {"action": "add-members", "mailbox_address": "sales@acme.example",
                       "members": ["alice", "bob"], "approver": "carol"},
    "vpn-access": {"vpn_profile": "standard"},
    "normal-change": {"change_title": "Upgrade the mail relay", "description": "Upgrade the "
                      "outbound mail relay to the current release to fix delivery delays.",
                      "affected_systems": ["crm"], "implementer": "heidi",
                      "planned_date": "2026-12-01"},
    "standard-change": {"change_template": "restart-service", "target": "mail01.acme.example",
                        "planned_date": "2026-12-01"},
    "emergency-change": {"change_title": "Patch the VPN gateway now", "justification": "An exploit "
                         "for the VPN gateway is published and used.", "planned_date": "2026-11-24",
                         "start_time": "14:00", "end_time": "15:00",
                         "rollback_plan": "Restore the gateway's configuration backup."},
    "meeting-room-equipment": {"room": "vermeer", "meeting_date": "2026-12-01",
                               "start_time": "10:00", "attendees": 6, "equipment": ["projector"]},
    "badge-replacement": {"badge_reason": "damaged", "building": "home",
                          "home_address": "Keizersgracht 1, Amsterdam"},
    "mobile-phone": {"device": "pixel", "data_plan": "10gb", "cost_center": "CC-1234",
                     "building": "ams-hq", "floor": 3},
    "monitor-peripherals": {"accessories": [{"accessory": "dock", "quantity": 1}],
                            "building": "ams-hq", "floor": 2},
    "new-laptop": {"model": "std14", "cost_center": "CC-1234", "building": "ams-hq", "floor": 4},
    "new-hire-onboarding": {"new_hire_name": "Sam Smith", "personal_email": "sam@example.com",
                            "job_title": "Analyst", "start_date": "2027-01-04",
                            "hiring_manager": "bob", "contract_type": "permanent",
                            "office": "ams-hq", "equipment": ["laptop"]},
    "offboarding": {"leaving_person": "peter", "last_day": "2026-12-31", "reason": "resignation",
                    "handover_to": "grace"},
    "software-licence": {"software": "figma-professional", "business_reason": "Design work for the portal.",
                         "cost_center": "CC-1234"},
    "report-incident": {"short_description": "Mail is down", "affected_service": "email",
                        "description": "Nobody on the third floor can send or receive mail.",
                        "impact": "high", "people_affected": 40, "urgency": "high",
                        "contact_email": "alice@acme.example"},
    "password-unlock": {"account": "acme"},
    "problem": {"short_description": "VPN drops every 30 minutes on Wi-Fi", "service": "network"},
}

