"""``python -m arena matchmaker ...`` against a real Redis: what an operator changes reaches every
web process's next choice."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from arena.cli.operator import main
from arena.keys import model_benched_key, owner_models_key
from arena.matchmaker import build_matchmaker
from arena.models import availability
from arena.models.names import announce_configured
from arena.ops.redis_server import EmbeddedRedis, embedded_url_file
from tests.helpers import arena_settings, make_snapshot, publish

MODELS = [f"m{i}" for i in range(6)]


def run(redis_url, *argv):
    return main(["--redis-url", redis_url, *argv])


def test_pause_and_resume_reach_another_process(redis_url, redis_client, capsys):
    web = build_matchmaker("active", redis_client)  # a web process, already running
    announce_configured(redis_client, "arena", MODELS)  # as it does when it starts
    assert run(redis_url, "pause", "m2") == 0
    picks = [web.choose(MODELS, 2, np.random.default_rng(seed)).models for seed in range(200)]
    assert not any("m2" in models for models in picks)
    assert run(redis_url, "status") == 0
    assert "paused: m2" in capsys.readouterr().out
    assert run(redis_url, "resume", "m2") == 0
    picks = [web.choose(MODELS, 2, np.random.default_rng(seed)).models for seed in range(200)]
    assert any("m2" in models for models in picks)


def test_pin_shows_in_status_and_an_overfull_pin_is_refused(redis_url, redis_client, capsys):
    publish(redis_client, make_snapshot(MODELS, np.linspace(1, -1, 6), np.eye(6) * 0.05, [100] * 6))
    redis_client.hset(model_benched_key("arena", "m4"), mapping={"reason": "3+ failures", "since": 1, "next_probe": 2})
    web = build_matchmaker("active", redis_client)
    assert run(redis_url, "pin", "m0", "m5", "--share", "0.5") == 0
    picks = [web.choose(MODELS, 2, np.random.default_rng(seed)) for seed in range(300)]
    assert sum(set(s.models) == {"m0", "m5"} for s in picks) > 0.4 * len(picks)
    capsys.readouterr()
    assert run(redis_url, "status") == 0
    out = capsys.readouterr().out
    assert "pins: m0 + m5 >= 50%" in out
    assert "benched (circuit breaker; `models list` says why): m4" in out
    assert "300 votes" in out
    assert [line.split()[-1] for line in out.splitlines() if " m4 " in line] == ["benched"]
    # 0.5 + 0.5 pinned + the 0.1 floor > all battles: refused, nothing stored
    assert run(redis_url, "pin", "m1", "m2", "--share", "0.5") == 2
    assert "refused" in capsys.readouterr().err
    assert web.pins() == {("m0", "m5"): 0.5}
    assert run(redis_url, "unpin", "m5", "m0") == 0
    assert web.pins() == {}
    capsys.readouterr()
    assert run(redis_url, "pause", "m9") == 2  # a typo is an error, and nothing is paused
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'm9': names must match the configured model names exactly; "
                          "known: m0, m1")
    assert availability.paused_models(redis_client, "arena") == frozenset()


def test_fairness_flags_and_environment_reach_the_live_matchmaker(redis_url, tmp_path, monkeypatch):
    import argparse

    from arena.cli.serve import ArenaStack
    from arena.ops.settings import add_serve_arguments, settings_from_args

    monkeypatch.setenv("ARENA_MAX_PAIR_SHARE", "0.35")
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    parsed = settings_from_args(parser.parse_args(["--matchmaker-floor", "0.25", "--new-model-votes", "50"]))
    assert (parsed.matchmaker_floor, parsed.max_pair_share, parsed.new_model_votes,
            parsed.new_model_ci) == (0.25, 0.35, 50, 40.0)
    for bad in (["--matchmaker-floor", "1.5"], ["--max-pair-share", "0"], ["--new-model-votes", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    settings = arena_settings(redis_url, tmp_path, matchmaker_floor=0.25, max_pair_share=0.35, new_model_votes=50,
                              new_model_ci=12.0)
    with ArenaStack(settings) as stack:
        fairness = stack.matchmaker.options.fairness
        assert (fairness.floor, fairness.max_pair_share, fairness.new_model_votes,
                fairness.new_model_ci) == (0.25, 0.35, 50, 12.0)


def test_a_paused_model_shows_as_paused_and_is_not_counted_available(arena_stack):
    import httpx

    with httpx.Client(base_url=arena_stack.url, timeout=30) as http:
        assert http.get("/healthz").json()["models_available"] == 5
        assert run(arena_stack.redis_url, "pause", "demo-echo") == 0
        models = {m["model"]: m for m in http.get("/api/models").json()["models"]}
        assert models["demo-echo"] == {"model": "demo-echo", "available": False, "status": "paused"}
        assert {m["status"] for name, m in models.items() if name != "demo-echo"} == {"active"}
        assert http.get("/healthz").json()["models_available"] == 4


def test_finds_the_embedded_redis_of_a_running_arena(tmp_path):
    data_dir = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "arena", "matchmaker", "--data-dir", str(data_dir), "status"]
    flag_after = [sys.executable, "-m", "arena", "matchmaker", "status", "--data-dir", str(data_dir)]
    stopped = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert stopped.returncode == 2 and "no running arena found" in stopped.stderr
    server = EmbeddedRedis(data_dir / "redis", appendfsync="everysec").start()  # as `serve` starts it
    try:
        assert embedded_url_file(data_dir / "redis").read_text().strip() == server.url
        for given in (command, flag_after):
            found = subprocess.run(given, capture_output=True, text=True, env=env, timeout=60)
            assert found.returncode == 0, found.stderr
            assert "no snapshot yet" in found.stdout
    finally:
        server.stop()
    assert not embedded_url_file(data_dir / "redis").exists()


def test_shared_flags_after_the_subcommand_and_from_the_environment(redis_url, redis_client, capsys, monkeypatch):
    announce_configured(redis_client, "other", MODELS)
    assert main(["pause", "m2", "--redis-url", redis_url, "--prefix", "other"]) == 0
    assert set(availability.paused_models(redis_client, "other")) == {"m2"}
    assert set(availability.paused_models(redis_client, "arena")) == set()
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("ARENA_PREFIX", "other")
    capsys.readouterr()
    assert main(["status"]) == 0
    assert "paused: m2" in capsys.readouterr().out
    assert main(["--prefix", "arena", "status"]) == 0  # a flag wins over the variable
    assert "paused: -" in capsys.readouterr().out
    assert main(["--prefix", "arena", "status", "--prefix", "other"]) == 0  # the one after the subcommand wins
    assert "paused: m2" in capsys.readouterr().out


def test_unknown_models_are_refused_for_pause_resume_and_pin_but_a_paused_one_can_be_resumed(redis_url, redis_client,
                                                                                              capsys):
    assert run(redis_url, "pause", "m1") == 2  # nothing known yet: no web process has announced its models
    assert "known: none yet" in capsys.readouterr().err
    announce_configured(redis_client, "arena", MODELS)
    for argv in (["pause", "typo"], ["resume", "typo"], ["pin", "m0", "typo", "--share", "0.1"]):
        assert run(redis_url, *argv) == 2
        assert "unknown model 'typo'" in capsys.readouterr().err
    assert build_matchmaker("uniform", redis_client).pins() == {}
    availability.pause(redis_client, "arena", "retired-model")  # paused before it left the configuration
    assert run(redis_url, "resume", "retired-model") == 0
    assert availability.paused_models(redis_client, "arena") == frozenset()


# Every operator command shares run_operator_command: its exit codes, its one-line errors, its quiet `| head`.
OPERATOR_COMMANDS = (["matchmaker", "status"], ["owners", "list"], ["models", "list"], ["voters", "flagged"])


@pytest.mark.parametrize("command", OPERATOR_COMMANDS, ids=" ".join)
def test_every_operator_command_says_when_no_arena_is_running(tmp_path, command):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("REDIS_URL", None)
    stopped = subprocess.run([sys.executable, "-m", "arena", *command, "--data-dir", str(tmp_path)],
                             capture_output=True, text=True, env=env, timeout=60)
    assert stopped.returncode == 2 and stopped.stdout == ""
    assert stopped.stderr.startswith("error: no running arena found") and len(stopped.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", OPERATOR_COMMANDS, ids=" ".join)
def test_output_into_a_closed_pipe_ends_quietly(redis_url, redis_client, command):
    publish(redis_client, make_snapshot(MODELS, np.zeros(6), np.eye(6) * 0.05, [10] * 6))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line, as `| head` is after its lines
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    try:
        finished = subprocess.run([sys.executable, "-m", "arena", *command, "--redis-url", redis_url],
                                  stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(write_end)
    assert finished.returncode == 0
    assert finished.stderr == ""


def test_a_model_an_owner_registered_is_known_to_the_operator_commands(redis_url, redis_client):
    announce_configured(redis_client, "arena", MODELS)
    assert run(redis_url, "pause", "owned-model") == 2  # not registered yet
    redis_client.hset(owner_models_key("arena"), "owned-model", "{}")  # the registry's key (arena.owners.store)
    assert run(redis_url, "pause", "owned-model") == 0
    assert availability.paused_models(redis_client, "arena") == frozenset({"owned-model"})


# Every command's --help, as an operator reads it: the descriptions come from module docstrings,
# whose RST markup (``...``) must not reach the terminal.
HELP_COMMANDS = (
    ["arena"], ["arena", "serve"], ["arena", "simulate"], ["arena", "matchmaker"], ["arena", "matchmaker", "pin"],
    ["arena", "voters"], ["arena", "voters", "flagged"], ["arena", "owners"], ["arena", "owners", "revoke"],
    ["arena", "models"], ["arena", "models", "list"], ["arena", "models", "approve"],
    ["leaderboard"], ["leaderboard", "rebuild"], ["leaderboard", "worker"], ["leaderboard", "fit"],
    ["leaderboard", "convert"],
)


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=" ".join)
def test_help_is_plain_text(command, capsys):
    from arena.__main__ import main as arena_main
    from leaderboard.cli import main as leaderboard_main

    entry = arena_main if command[0] == "arena" else leaderboard_main
    with pytest.raises(SystemExit) as exited:
        entry([*command[1:], "--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: python -m ") and "``" not in shown, shown


def test_voters_and_rebuild_help_read_plainly_from_the_shell():
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    for module, group, described in (("arena", "voters", "the operator's view of voters"),
                                     ("leaderboard", "rebuild", "every count and the leaderboard views")):
        shown = subprocess.run([sys.executable, "-m", module, group, "--help"], capture_output=True, text=True,
                               env=env, timeout=60)
        assert shown.returncode == 0 and described in " ".join(shown.stdout.split())
        assert "``" not in shown.stdout
