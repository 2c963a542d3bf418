"""The home screen: the ticket tile and the guide tile first (the two most wanted, and
the largest), then 申报 and 进度查询 (the ticket and application tiles only when a hall
server is configured), the language and elder-mode toggles, and in 长辈模式 the switch for
spoken prompts."""

from kivy.app import App
from kivy.uix.screenmanager import Screen


class HomeScreen(Screen):
    """Layout in home.kv; every action is the app's."""

    def on_kv_post(self, _base: object) -> None:
        app = App.get_running_app()
        if app.server is None:  # no server: no tickets or applications, and no tiles saying so
            self.ids.column.remove_widget(self.ids.ticket_tile)
            self.ids.column.remove_widget(self.ids.application_tiles)
        self._speech_toggle = self.ids.speech_toggle.__self__  # a strong reference: ids are weak
        app.bind(elder=self._show_speech_toggle)
        self._show_speech_toggle(app, app.elder)

    def _show_speech_toggle(self, app: App, elder: bool) -> None:
        """The voice switch is there in 长辈模式 when the kiosk can speak, and absent otherwise."""
        toggles, toggle = self.ids.toggles, self._speech_toggle
        wanted = elder and app.speaker.available
        if wanted and toggle.parent is None:
            toggles.add_widget(toggle, index=0)
        elif not wanted and toggle.parent is not None:
            toggles.remove_widget(toggle)
