"""In-app notifications: the bell's count, the list, opening and marking read, preferences."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import RadioField
from wtforms.fields.choices import SelectChoice

from engine import notifications
from web.context import nav, service, viewer
from web.extensions import db

bp = Blueprint("notifications", __name__)


class PreferencesForm(FlaskForm):
    """One choice of channel per kind of notification (fields added below, one per kind)."""


for _kind, _label in notifications.KINDS.items():
    setattr(PreferencesForm, _kind, RadioField(_label, choices=[
        SelectChoice(value, label) for value, label in notifications.CHANNELS.items()]))


@bp.app_template_global("unread_notifications")
def unread_notifications() -> int:
    """The nav's bell: the viewer's unread count (one of the nav's figures, web.context.nav)."""
    return nav().unread if current_user.is_authenticated else 0


@bp.route("/notifications")
@login_required
def inbox() -> str:
    entries = notifications.inbox(db.session(), viewer())
    return render_template("notifications/list.html", entries=entries,
                           kinds=notifications.KINDS)


@bp.route("/notifications/<id:notification_id>/open", methods=["POST"])
@login_required
def open_one(notification_id: int) -> Response:
    """Mark it read and go to its record (or back to the list when it has none)."""
    number = service().open_notification(viewer(), notification_id)
    if number is None:
        return redirect(url_for("notifications.inbox"))
    return redirect(url_for("requests.detail", number=number))


@bp.route("/notifications/read-all", methods=["POST"])
@login_required
def read_all() -> Response:
    count = service().read_all_notifications(viewer())
    flash(f"Marked {count} notification{'' if count == 1 else 's'} read." if count
          else "Nothing was unread.", "success")
    return redirect(url_for("notifications.inbox"))


@bp.route("/notifications/settings", methods=["GET", "POST"])
@login_required
def settings() -> tuple[str, int] | Response:
    form = PreferencesForm()
    if form.is_submitted():
        if form.validate():
            service().set_notification_preferences(
                viewer(), {kind: form[kind].data for kind in notifications.KINDS})
            flash("Your notification settings are saved.", "success")
            return redirect(url_for("notifications.settings"))
        return render_template("notifications/settings.html", form=form), 422
    for kind, channel in notifications.preferences(db.session(), viewer()).items():
        form[kind].data = channel
    return render_template("notifications/settings.html", form=form), 200
