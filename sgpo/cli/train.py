"""Placeholder until the train commands land."""


def register(app):
    pass
