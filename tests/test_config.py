"""Configuration precedence: defaults < skillforge.toml < SKILLFORGE_* < flags."""

from __future__ import annotations

import pytest

from skillforge.config import load
from skillforge.errors import ConfigError


def test_defaults_resolve_against_the_working_directory(tmp_path):
    config = load(environ={}, cwd=tmp_path)
    assert config.inbox == tmp_path / "trajectories"
    assert config.db_path == tmp_path / "var" / "skillforge.db"
    assert config.library_path == tmp_path / "var" / "library"
    assert config.remote_url == str(tmp_path / "var" / "library.git")


def test_file_then_environment_then_flags(tmp_path):
    (tmp_path / "skillforge.toml").write_text(
        '[skillforge]\nhome = "state"\nevolve_after = 10\nevolve_every_minutes = 5\n'
    )
    config = load(
        environ={"SKILLFORGE_EVOLVE_AFTER": "20"},
        cwd=tmp_path,
        overrides={"evolve_every_minutes": 1},
    )
    assert config.home == tmp_path / "state"
    assert (config.evolve_after, config.evolve_every_minutes) == (20, 1)


def test_a_remote_url_is_left_alone(tmp_path):
    config = load(
        environ={"SKILLFORGE_REMOTE": "git@example.invalid:team/skills.git"}, cwd=tmp_path
    )
    assert config.remote_url == "git@example.invalid:team/skills.git"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[skillforge]\nevolve_after = 0\n", "evolve_after"),
        ("[skillforge\n", "not valid TOML"),
        ("[skillforge]\ninbx = 'x'\n", "inbx"),
    ],
)
def test_bad_configuration_says_what_is_wrong(tmp_path, text, message):
    (tmp_path / "skillforge.toml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(environ={}, cwd=tmp_path)


def test_a_missing_explicit_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml", environ={}, cwd=tmp_path)
