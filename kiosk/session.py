"""One citizen's session at the kiosk and its end: whether there is anything to protect,
the "还在吗？" prompt after inactivity (kiosk/idle.py counts), and the privacy wipe that
forgets what each flow holds and goes home."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kivy.event import EventDispatcher

if TYPE_CHECKING:
    from kiosq.kiosk.app import KiosqApp
    from kiosq.kiosk.idle import IdleWatcher
    from kiosq.kiosk.widgets import IdlePrompt


class Session(EventDispatcher):
    """The session's watch and wipe; what a session holds is each flow's own state."""

    def __init__(self, app: KiosqApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.idle: IdleWatcher | None = None
        self.prompt: IdlePrompt | None = None

    def start(self) -> None:
        """Watch for inactivity (a touch anywhere restarts the count)."""
        from kivy.core.window import Window

        from kiosq.kiosk.idle import IdleWatcher

        cfg = self.app.kiosk_config
        self.idle = IdleWatcher(cfg.idle_timeout, cfg.idle_countdown, in_session=self.in_session,
                                show=self._show_prompt, hide=self._hide_prompt, expire=self.end)
        Window.bind(on_touch_down=self._on_any_touch)

    def stop(self) -> None:
        from kivy.core.window import Window

        Window.unbind(on_touch_down=self._on_any_touch)
        if self.idle is not None:
            self.idle.stop()

    def in_session(self) -> bool:
        """Whether anything on screen or in memory is this citizen's."""
        app, cfg = self.app, self.app.kiosk_config
        return bool(app.manager.current != "home" or app.history or app.query or app.department
                    or app.lang != cfg.lang or app.elder != cfg.elder
                    or app.apply.in_session() or app.progress.in_session())

    def end(self) -> None:
        """The citizen is done or gone (完成, or the idle countdown ran out): wipe, and a card
        still on the reader is not offered to whoever comes next; it must be lifted and
        placed again to be read."""
        if self.app.cards is not None:
            self.app.cards.forget()
        self.wipe()

    def wipe(self) -> None:
        """Forget the session (search, choices, open item, screens, preferences) and go home."""
        app = self.app
        app.forget_guides()
        app.tickets.forget()
        app.maintenance.forget()
        app.reset_preferences()
        app.go_home()  # which forgets the application and the progress lookups

    def _on_any_touch(self, _window: object, _touch: object) -> bool:
        if self.idle is not None:
            self.idle.touched()
        return False  # the touch goes on to the widgets

    def _show_prompt(self, seconds: int) -> None:
        from kiosq.kiosk.widgets import IdlePrompt

        if self.prompt is None:
            self.prompt = IdlePrompt()
        self.prompt.seconds = seconds
        if self.prompt.parent is None:
            self.prompt.open(animation=False)
            self.app.say(self.app.msg["say_idle"])

    def _hide_prompt(self) -> None:
        if self.prompt is not None and self.prompt.parent is not None:
            self.prompt.dismiss(animation=False)
