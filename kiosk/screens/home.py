"""The home screen: the guide tile, the language and elder-mode toggles (the ticket,
filing and progress tiles come with their flows)."""

from kivy.uix.screenmanager import Screen


class HomeScreen(Screen):
    """Layout in home.kv; every action is the app's."""
