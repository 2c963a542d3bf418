"""The maintenance screen (behind the corner taps and the PIN): the printer's and the
server's state (and the applications waiting in the outbox), a test print, the last slip
this kiosk printed, the content version, the terminal id (and the PIN lockouts since install,
so whoever opens it learns that someone tried), and a button that stops the app."""

from kivy.app import App
from kivy.uix.screenmanager import Screen


def status_lines(app) -> dict[str, str]:
    """The text of each fact the screen shows, by widget id."""
    msg, cfg = app.msg, app.kiosk_config
    printer = msg["printer_" + (app.fleet.printer_state or "checking")]
    uri = cfg.printer_uri or "-"
    server = (msg["maint_server"].format(url=cfg.server_url, s=msg["server_" + (app.fleet.server_state or "checking")])
              if cfg.server_url else msg["maint_server_none"])
    if app.apply.outbox is not None:  # applications waiting for the server, and any it refused (for staff to see)
        server += "\n" + msg["maint_outbox"].format(n=app.apply.outbox_waiting, r=app.apply.outbox_refused)
    if app.apply.outbox_problem:  # its key is lost: IT must restore outbox.key
        server += "\n" + msg["maint_outbox_problem"].format(why=app.apply.outbox_problem)
    content = msg["maint_content"].format(path=app.guides.path if app.guides else "-",
                                          n=len(app.guides.items) if app.guides else 0)
    terminal = msg["maint_terminal"].format(id=cfg.terminal_id)
    pin = app.maintenance.pin_guard.state
    if pin.lockouts and pin.last_lockout_at is not None:
        at = pin.last_lockout_at.astimezone().strftime("%Y-%m-%d %H:%M")  # the kiosk's own time zone
        terminal += "\n" + msg["maint_pin_lockouts"].format(n=pin.lockouts, at=at)
    return {"printer": msg["maint_printer"].format(s=printer, uri=uri), "server": server, "content": content,
            "terminal": terminal}


class MaintenanceScreen(Screen):
    """Redraws when a state or the language changes; asks for fresh states on entry."""

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        app.bind(lang=self.refresh)
        app.fleet.bind(printer_state=self.refresh, server_state=self.refresh)
        app.apply.bind(outbox_waiting=self.refresh, outbox_refused=self.refresh, outbox_problem=self.refresh)
        self.refresh()

    def on_pre_enter(self, *_args: object) -> None:
        App.get_running_app().maintenance.refresh()
        self.refresh()

    def refresh(self, *_args: object) -> None:
        for key, text in status_lines(App.get_running_app()).items():
            self.ids[key].text = text
