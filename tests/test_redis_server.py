import pytest
import redis

from arena.redis_server import EmbeddedRedis, RedisUnavailableError, connect, free_port, redact_url


def test_embedded_redis_persists_across_restart(tmp_path):
    server = EmbeddedRedis(tmp_path).start()
    client = redis.Redis.from_url(server.url)
    client.xadd("s", {"event": "1"})
    client.close()
    server.stop()
    again = EmbeddedRedis(tmp_path, port=server.port).start()
    try:
        assert redis.Redis.from_url(again.url).xlen("s") == 1
    finally:
        again.stop()


def test_unreachable_redis_is_one_clear_error():
    port = free_port()
    with pytest.raises(RedisUnavailableError, match=f"cannot reach Redis at redis://127.0.0.1:{port}"):
        connect(f"redis://127.0.0.1:{port}/0", timeout=0.5)


def test_password_is_redacted():
    assert redact_url("redis://:hunter2@host:6379/0") == "redis://:***@host:6379/0"
