"""Safe to expose: local paths typed into the dashboard stay inside the allowed roots (sgpo.paths), and a
dashboard bound beyond loopback answers only sessions that bring its token (dashboard/access.py)."""

from __future__ import annotations

import os

import pytest

from sgpo import paths
from sgpo.errors import ConfigError


def test_a_path_inside_an_allowed_root_is_resolved_and_one_outside_is_refused_in_one_line(tmp_path):
    root = tmp_path / "root"
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.jsonl").write_text("{}\n")
    assert paths.check_allowed(root / "data" / "train.jsonl", [root]) == (root / "data" / "train.jsonl").resolve()
    with pytest.raises(ConfigError) as refused:
        paths.check_allowed("/etc/passwd", [root])
    message = str(refused.value)
    assert "\n" not in message and "/etc/passwd" in message and "--allow-root" in message


def test_dot_dot_and_symlinks_out_of_a_root_are_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.jsonl").write_text("{}\n")
    (root / "link.jsonl").symlink_to(outside / "secret.jsonl")
    for path in (root / ".." / "outside" / "secret.jsonl", root / "link.jsonl"):
        with pytest.raises(ConfigError):
            paths.check_allowed(path, [root])


def test_the_roots_come_from_the_environment_else_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(paths.ALLOWED_ROOTS_ENV, raising=False)
    assert paths.allowed_roots() == [tmp_path.resolve()]
    monkeypatch.setenv(paths.ALLOWED_ROOTS_ENV, os.pathsep.join(["/srv/a", "/srv/b"]))
    assert paths.allowed_roots() == [paths.Path("/srv/a"), paths.Path("/srv/b")]


def test_only_specs_naming_local_files_are_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    roots = [tmp_path]
    for spec, kind in (
        ("builtin:train", "dataset"),
        ("hf:openai/gsm8k:main:train", "dataset"),
        ("starter", "model"),
        ("run:base@40", "model"),
        ("Qwen/Qwen2.5-0.5B-Instruct", "model"),
        ("data/train.jsonl", "dataset"),
    ):
        assert paths.check_spec_allowed(spec, kind, roots) == spec
    for spec, kind in (("/etc/passwd", "dataset"), ("/usr", "model"), ("../elsewhere", "model")):
        with pytest.raises(ConfigError):
            paths.check_spec_allowed(spec, kind, roots)
