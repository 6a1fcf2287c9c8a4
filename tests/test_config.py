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


def test_db_may_be_a_postgres_url_which_is_kept_as_is_and_never_shown_with_its_password(
    tmp_path,
):
    url = "postgresql://evolver:s3cret@db.internal:5432/skillforge?sslmode=require"
    (tmp_path / "skillforge.toml").write_text(f'[skillforge]\ndb = "{url}"\n')
    config = load(environ={}, cwd=tmp_path)
    assert config.db_is_postgres
    assert config.store_location == url
    assert config.store_display == (
        "postgresql://evolver:***@db.internal:5432/skillforge?sslmode=require"
    )
    assert "s3cret" not in repr(config)
    with pytest.raises(ConfigError, match=r"PostgreSQL URL \(postgresql://evolver:\*\*\*@"):
        _ = config.db_path  # a command not yet ported fails; no stray SQLite file is opened


def test_a_sqlite_db_still_resolves_against_the_config_folder(tmp_path):
    (tmp_path / "skillforge.toml").write_text('[skillforge]\ndb = "state/s.db"\n')
    config = load(environ={}, cwd=tmp_path)
    assert not config.db_is_postgres
    assert config.db_path == tmp_path / "state" / "s.db"
    assert config.store_location == config.store_display == str(tmp_path / "state" / "s.db")
    default = load(environ={}, cwd=tmp_path / "elsewhere")
    assert default.store_location == str(tmp_path / "elsewhere" / "var" / "skillforge.db")


def test_db_from_the_environment_or_a_path_flag(tmp_path):
    env = load(environ={"SKILLFORGE_DB": "postgres://node@10.0.0.5/sf"}, cwd=tmp_path)
    assert (env.db_is_postgres, env.store_location) == (True, "postgres://node@10.0.0.5/sf")
    flag = load(environ={}, cwd=tmp_path, overrides={"db": tmp_path / "x.db"})
    assert flag.db_path == tmp_path / "x.db"


def test_a_db_url_of_another_kind_is_refused_without_its_password(tmp_path):
    with pytest.raises(ConfigError, match=r"mysql://root:\*\*\*@h/db is neither") as caught:
        load(environ={"SKILLFORGE_DB": "mysql://root:pw@h/db"}, cwd=tmp_path)
    assert "pw@" not in str(caught.value)
