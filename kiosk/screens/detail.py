"""The guide detail screen: every field of one item, scrollable, and buttons that print
the guide slip (or the A4 guide, with an A4 printer; on a worker thread, the outcome shown
in plain words, then the one-tap rating) and take a ticket for the item's queue service
(with a hall server)."""

from __future__ import annotations

from kivy.app import App
from kivy.uix.screenmanager import Screen
from kivy.utils import escape_markup

from kiosq.content.document import guide_document
from kiosq.content.model import ItemGuide
from kiosq.kiosk.filing import fileable_here


def body_markup(item: ItemGuide, lang: str) -> str:
    """The item's sections as Kivy markup: bold headings, one line per entry."""
    doc = guide_document(item, lang)
    parts = []
    for section in doc.sections:
        lines = [escape_markup(line) for line in section.lines]
        lines += ["□ " + escape_markup(check.text + (f"（{check.note}）" if check.note else ""))
                  for check in section.checklist]
        parts.append(f"[b][color=175bb3]{escape_markup(section.heading)}[/color][/b]\n" + "\n".join(lines))
    return "\n\n".join(parts)


def meta_markup(item: ItemGuide, msg: dict[str, str]) -> str:
    """Code, department, category and type, one per line."""
    fields = (("field_code", item.code), ("field_department", item.department),
              ("field_category", item.category), ("field_type", item.type))
    return "\n".join(f"[b]{escape_markup(msg[key])}[/b]  {escape_markup(value)}" for key, value in fields)


class DetailScreen(Screen):
    """Shows the app's current item; redraws when it or the language changes."""

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        # what this kiosk cannot do is absent, not dead: no server, no ticket; no A4 printer, no A4
        self._apply_button = self.ids.apply_button.__self__  # a strong reference: ids are weak
        if app.server is None:
            self.ids.actions.remove_widget(self.ids.ticket_button)
        if not app.kiosk_config.a4_printer_uri:
            self.ids.actions.remove_widget(self.ids.a4_button)
        app.bind(item_code=self.refresh, lang=self.refresh)
        self.refresh()

    def refresh(self, *_args: object) -> None:
        app = App.get_running_app()
        if not app.item_code:
            return
        item = app.guides.item(app.item_code)
        self.ids.title.text = item.name if app.lang == "zh" else item.name_en
        self.ids.meta.text = meta_markup(item, app.msg)
        self.ids.body.text = body_markup(item, app.lang)
        # 在本机申报 only for an item this kiosk can file, and only with a server to file it with
        wanted = app.server is not None and not app.apply.outbox_problem and fileable_here(item)
        actions, button = self.ids.actions, self._apply_button
        if wanted and button.parent is None:
            actions.add_widget(button, index=len(actions.children))  # next to 取号, at the left
        elif not wanted and button.parent is not None:
            actions.remove_widget(button)
        self.ids.scroll.scroll_y = 1
