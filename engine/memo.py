"""Answers remembered by a session until it next writes or its transaction ends.

A page asks the same questions several times — is this person an agent of the record, an
admin, a member of its group — from each panel it draws; each answer costs a query. Within one
transaction, and until the session flushes a change, the answer cannot change, so it is read
once. Any flush, commit or rollback forgets everything (a change may have altered the answer).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

T = TypeVar("T")
_KEY = "deskflow.memo"


def remember(session: Session, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()`, or what it returned for `key` earlier in this session's transaction."""
    memo: dict[Hashable, Any] | None = session.info.get(_KEY)
    if memo is None:
        memo = session.info[_KEY] = {}
    elif key in memo:
        return memo[key]  # type: ignore[no-any-return]
    value = memo[key] = compute()
    return value


def recall(session: Session, key: Hashable) -> Any:
    """What `remember` keeps for `key` in this session's transaction, else None (nothing read)."""
    memo: dict[Hashable, Any] | None = session.info.get(_KEY)
    return None if memo is None else memo.get(key)


def forget(session: Session, *_: Any) -> None:
    """Forget every answer (a write the session did not flush may have changed them)."""
    session.info.pop(_KEY, None)


def watch() -> None:
    """Forget on every flush and at the end of every transaction (once per process)."""
    for name in ("after_flush", "after_transaction_end"):
        if not event.contains(Session, name, forget):
            event.listen(Session, name, forget)


watch()
