"""Placeholder until the plan commands land."""


def register(app):
    pass
