"""The home screen: the ticket tile (only when a hall server is configured), the guide
tile, the language and elder-mode toggles (the filing and progress tiles come with their
flows)."""

from kivy.app import App
from kivy.uix.screenmanager import Screen


class HomeScreen(Screen):
    """Layout in home.kv; every action is the app's."""

    def on_kv_post(self, _base: object) -> None:
        if App.get_running_app().server is None:  # no server: no tickets, and no tile saying so
            self.ids.column.remove_widget(self.ids.ticket_tile)
