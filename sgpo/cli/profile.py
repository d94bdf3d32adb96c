"""Placeholder until the profile commands land."""


def register(app):
    pass
