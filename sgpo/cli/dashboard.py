"""Placeholder until the dashboard commands land."""


def register(app):
    pass
