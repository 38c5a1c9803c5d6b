"""The live voter-id key: never in Redis, from the environment or a 0600 file, rotated on a schedule."""

from __future__ import annotations

import stat

import httpx
import pytest

from arena.keys import voter_secret_key
from arena.trust.identity import VoterIdentity, VoterSecret, forget_secret_in_redis
from tests.helpers import arena_settings, wait_until

DAY = 86400.0


def test_the_file_key_is_0600_shared_by_processes_and_rotated_away(tmp_path):
    now = [100 * DAY + 5]
    first = VoterSecret(configured=None, data_dir=tmp_path, rotation_days=7, clock=lambda: now[0])
    second = VoterSecret(configured=None, data_dir=tmp_path, rotation_days=7, clock=lambda: now[0])
    ids = VoterIdentity(first), VoterIdentity(second)
    assert ids[0].voter_id("203.0.113.9") == ids[1].voter_id("203.0.113.9")  # two processes, one data dir
    path = first.file_for(first.period())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    before = ids[0].voter_id("203.0.113.9")
    now[0] = first.next_rotation()  # the boundary: a new key, new ids, the old key file gone
    after = ids[0].voter_id("203.0.113.9")
    assert after != before and ids[1].voter_id("203.0.113.9") == after
    assert not path.exists() and first.file_for(first.period()).exists()
    now[0] += DAY  # within the period: stable
    assert ids[0].voter_id("203.0.113.9") == after


def test_a_configured_secret_is_derived_per_period_and_never_used_raw(tmp_path):
    configured = "env-secret-0123456789abcdef"
    secret = VoterSecret(configured=configured, data_dir=tmp_path, rotation_days=30)
    keys = {secret.key(period * 30 * DAY) for period in range(3)}
    assert len(keys) == 3 and configured.encode() not in keys
    assert not (tmp_path / "secrets").exists()  # nothing written when the environment holds it
    assert VoterSecret(configured=configured, data_dir=tmp_path, rotation_days=0).key() == configured.encode()
    with pytest.raises(ValueError, match="at least 16 bytes"):
        VoterSecret(configured="short", data_dir=tmp_path)


def test_a_secret_left_in_redis_by_an_earlier_version_is_deleted(redis_client):
    redis_client.set(voter_secret_key("arena"), "legacy-secret-value-0123456789")
    assert forget_secret_in_redis(redis_client, "arena") is True
    assert redis_client.get(voter_secret_key("arena")) is None
    assert forget_secret_in_redis(redis_client, "arena") is False


def _redis_holds(redis_client, needles: list[bytes]) -> list[str]:
    """Keys whose name or serialised value contains any of the needles."""
    found = []
    for key in redis_client.scan_iter(count=1000):
        dumped = redis_client.dump(key) or b""
        if any(needle in key or needle in dumped for needle in needles):
            found.append(key.decode(errors="replace"))
    return found


@pytest.mark.parametrize("configured", [None, "configured-secret-7f3a9c2e51d04b88"])
def test_no_redis_key_or_append_only_file_holds_the_secret(redis_url, redis_client, redis_server, tmp_path, configured):
    from arena.cli.serve import ArenaStack

    settings = arena_settings(redis_url, tmp_path, voter_secret=configured)
    with ArenaStack(settings) as stack:
        with httpx.Client(base_url=stack.url, timeout=60) as client:
            for index in range(3):
                battle = client.post("/api/battles", json={"prompt": f"Name a river, please ({index})"}).json()
                voted = client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "tie"},
                                    headers={"X-Arena-Session": battle["session"]})
                assert voted.status_code == 200, voted.text
        key = stack.app.state.arena.identity._secret.key()
        wait_until(lambda: redis_client.xlen("arena:votes") == 3, what="three votes in the stream")
    needles = [key, key.hex().encode()] + ([configured.encode()] if configured else [])
    assert _redis_holds(redis_client, needles) == []
    aof_bytes = b"".join(path.read_bytes() for path in redis_server.data_dir.rglob("*") if path.is_file()
                         and ("aof" in path.name or path.suffix == ".rdb"))
    assert aof_bytes, "found no append-only file to search"
    assert not any(needle in aof_bytes for needle in needles)
    if configured is None:
        period = VoterSecret(configured=None, data_dir=tmp_path, rotation_days=30).period()
        key_file = tmp_path / "secrets" / f"voter-id-{period}.key"
        assert key_file.read_bytes() == key and stat.S_IMODE(key_file.stat().st_mode) == 0o600
