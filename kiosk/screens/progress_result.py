"""进度查询, the answer: each application with its state in words, the dates, and its steps."""

from __future__ import annotations

from datetime import datetime

from kivy.app import App
from kivy.uix.screenmanager import Screen
from kivy.utils import escape_markup

from kiosq.kiosk.widgets import BodyLabel


def when(stamp: str) -> str:
    """The server's ISO time (hall's local time, with its offset) as 2026-11-22 14:05."""
    try:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return stamp or ""


def application_markup(found: dict, msg: dict[str, str]) -> str:
    """One application as Kivy markup: item and number, state, dates, steps (no personal data)."""
    status = msg.get(f"status_{found.get('status')}", found.get("status", ""))
    pending = " " + msg["progress_pending_rejection"] if found.get("rejection_pending") else ""
    lines = [f"[b][color=175bb3]{escape_markup(found.get('item_name', ''))}[/color][/b]",
             f"{escape_markup(found.get('tracking_no', ''))}   [b]{escape_markup(status)}[/b]{escape_markup(pending)}",
             escape_markup(msg["progress_submitted"].format(at=when(found.get("submitted_at", "")))) + "   "
             + escape_markup(msg["progress_promised"].format(date=found.get("promised_date", "")))]
    for step in found.get("history", []):
        words = msg.get(f"status_{step.get('status')}", step.get("status", ""))
        note = f"（{step['note']}）" if step.get("note") else ""
        lines.append(f"· {escape_markup(when(step.get('at', '')))}  {escape_markup(words + note)}")
    return "\n".join(lines)


class ProgressResultScreen(Screen):
    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(lang=self.refresh)
        app.progress.bind(results=self.refresh)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        box = self.ids.results
        box.clear_widgets()
        for found in app.progress.results:
            box.add_widget(BodyLabel(text=application_markup(found, app.msg), markup=True))
