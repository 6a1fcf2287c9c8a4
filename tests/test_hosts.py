"""The code host clients (GitHub REST v3, Gitea API v1) against a loopback host that follows
their documented API, with a real git remote behind it: calls, headers, paging, errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from skillforge.config import load
from skillforge.errors import CodeHostError, ConfigError, HostAuthError
from skillforge.hosts import host_from_config
from skillforge.hosts.gitea import Gitea
from skillforge.hosts.github import GitHub
from tests.fake_host import TOKEN, FakeHost


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(params=["github", "gitea"])
def fake(request, tmp_path):
    with FakeHost(request.param, tmp_path / "srv") as host:
        clone = tmp_path / "clone"
        git("clone", "-q", host.remote, str(clone))
        (clone / "a").mkdir()
        (clone / "a" / "SKILL.md").write_text("first\n")
        git("add", "-A", cwd=clone)
        git("commit", "-qm", "seed", cwd=clone)
        git("push", "-q", "origin", "HEAD:main", cwd=clone)
        git("checkout", "-qb", "evolve/one", cwd=clone)
        (clone / "a" / "SKILL.md").write_text("second\n")
        git("commit", "-qam", "change a", cwd=clone)
        git("push", "-q", "origin", "evolve/one", cwd=clone)
        yield host


def client(fake: FakeHost, token: str = TOKEN):
    kind = GitHub if fake.flavour == "github" else Gitea
    return kind(fake.api, "acme/skills", token, backoff=0)


def test_a_pull_request_is_opened_once_then_updated_in_place(fake):
    host = client(fake)
    first = host.open_or_update_pr("evolve/one", "main", "Proposal 1", "body one")
    second = host.open_or_update_pr("evolve/one", "main", "Proposal 2", "body two")
    assert first.number == second.number == 1 and first.state == "open"
    assert first.url.endswith(
        "/acme/skills/" + ("pull/1" if fake.flavour == "github" else "pulls/1")
    )
    [pull] = fake.pulls.values()
    assert (pull["title"], pull["body"], pull["base"]["ref"]) == ("Proposal 2", "body two", "main")
    methods = [(m, p.split("?")[0].rsplit("/repos/", 1)[1]) for m, p, _ in fake.requests]
    assert ("POST", "acme/skills/pulls") in methods and ("PATCH", "acme/skills/pulls/1") in methods
    headers = fake.requests[0][2]
    if fake.flavour == "github":
        assert headers.get("Authorization") == f"Bearer {TOKEN}"
        assert headers.get("Accept") == "application/vnd.github+json"
        assert headers.get("X-GitHub-Api-Version") == "2022-11-28"
    else:
        assert headers.get("Authorization") == f"token {TOKEN}"


def test_state_and_every_kind_of_comment_are_read_back_across_pages(fake):
    host = client(fake)
    number = host.open_or_update_pr("evolve/one", "main", "t", "b").number
    fake.page_size = 1  # every list comes one item per page, joined by Link headers
    fake.review(number, "alice", "Too broad.", lines=(("a/SKILL.md", "Drop step 3."),))
    fake.comment(number, "bob", "Agree with alice.")
    fake.comment(number, "carol", "Me too.")
    comments = host.comments(number)
    said = {(c.kind, c.author, c.body, c.path) for c in comments}
    assert said == {
        ("review", "alice", "Too broad.", None),
        ("line", "alice", "Drop step 3.", "a/SKILL.md"),
        ("issue", "bob", "Agree with alice.", None),
        ("issue", "carol", "Me too.", None),
    }
    assert len({c.key for c in comments}) == 4
    assert host.pull_request(number).state == "open"
    fake.merge(number, by="dora")
    merged = host.pull_request(number)
    assert (merged.state, merged.merged_by) == ("merged", "dora")
    assert "second" in git("--git-dir", str(fake.bare), "show", "main:a/SKILL.md")


def test_a_closed_pull_request_reads_as_closed(fake):
    host = client(fake)
    number = host.open_or_update_pr("evolve/one", "main", "t", "b").number
    fake.close(number)
    assert host.pull_request(number).state == "closed"
    again = host.open_or_update_pr("evolve/one", "main", "t", "b")  # closed ones are not reused
    assert again.number == number + 1


def test_merging_through_the_api_merges_the_real_branch(fake):
    host = client(fake)
    number = host.open_or_update_pr("evolve/one", "main", "t", "b").number
    host.merge(number, "Auto-merge")
    assert host.pull_request(number).state == "merged"
    assert git("--git-dir", str(fake.bare), "show", "main:a/SKILL.md") == "second\n"


def test_a_bad_token_is_an_auth_error_with_the_hosts_message(fake):
    with pytest.raises(HostAuthError, match="Bad credentials") as caught:
        client(fake, token="wrong").pull_request(1)
    assert caught.value.status == 401 and "wrong" not in str(caught.value)


def test_server_errors_are_retried_then_reported(fake):
    host = client(fake)
    fake.failures = [502, 503]
    assert host.open_or_update_pr("evolve/one", "main", "t", "b").number == 1
    fake.failures = [500, 500, 500]
    with pytest.raises(CodeHostError, match="500: upstream hiccup") as caught:
        host.pull_request(1)
    assert caught.value.status == 500


def test_a_refused_request_carries_the_hosts_explanation(fake):
    with pytest.raises(CodeHostError, match="head branch evolve/missing not found"):
        client(fake).open_or_update_pr("evolve/missing", "main", "t", "b")
    with pytest.raises(CodeHostError, match="404: Not Found"):
        client(fake).pull_request(77)


def test_an_unreachable_host_says_so(tmp_path):
    with FakeHost("github", tmp_path / "srv") as fake:
        api = fake.api
    with pytest.raises(CodeHostError, match="could not be reached"):
        GitHub(api, "acme/skills", TOKEN, backoff=0).pull_request(1)


# -- which host, from the configuration ------------------------------------------------


def config_for(tmp_path, **values):
    return load(environ={}, cwd=tmp_path, overrides=values)


def test_a_github_remote_with_a_token_is_github(tmp_path):
    config = config_for(tmp_path, remote="git@github.com:acme/skills.git", host_token="t")
    host = host_from_config(config, environ={})
    assert isinstance(host, GitHub) and host.rest.api_url == "https://api.github.com"
    assert (host.owner, host.repo) == ("acme", "skills")
    https = config_for(tmp_path, remote="https://github.com/acme/skills.git")
    assert isinstance(host_from_config(https, environ={"GITHUB_TOKEN": "t"}), GitHub)


def test_without_a_host_or_a_token_review_stays_local(tmp_path):
    assert host_from_config(config_for(tmp_path), environ={"GITHUB_TOKEN": "t"}) is None
    github = config_for(tmp_path, remote="https://github.com/acme/skills.git")
    assert host_from_config(github, environ={}) is None
    off = config_for(tmp_path, remote="https://github.com/acme/skills.git", host="none")
    assert host_from_config(off, environ={"GITHUB_TOKEN": "t"}) is None


def test_a_gitea_remote_gives_the_api_root_and_repository(tmp_path):
    config = config_for(tmp_path, host="gitea", remote="http://127.0.0.1:3000/acme/skills.git")
    host = host_from_config(config, environ={"GITEA_TOKEN": "t"})
    assert isinstance(host, Gitea) and host.rest.api_url == "http://127.0.0.1:3000/api/v1"
    assert (host.owner, host.repo) == ("acme", "skills")


def test_a_host_without_a_token_or_repository_is_a_config_error(tmp_path):
    gitea = config_for(tmp_path, host="gitea", remote="https://git.example.com/acme/skills.git")
    with pytest.raises(ConfigError, match="SKILLFORGE_HOST_TOKEN"):
        host_from_config(gitea, environ={})
    local = config_for(tmp_path, host="gitea", host_token="t")
    with pytest.raises(ConfigError, match="host_repo"):
        host_from_config(local, environ={})
    token_env = load(environ={"SKILLFORGE_HOST_TOKEN": "s3cret"}, cwd=tmp_path)
    assert token_env.host_token == "s3cret" and "s3cret" not in repr(token_env)
