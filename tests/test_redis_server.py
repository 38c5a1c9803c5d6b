import pytest
import redis

from arena.ops.redis_server import EmbeddedRedis, RedisUnavailableError, connect, free_port, redact_url


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


def test_the_data_dir_keeps_its_port_and_a_taken_one_is_replaced(tmp_path):
    import socket

    from arena.ops.redis_server import stored_port_file

    server = EmbeddedRedis(tmp_path).start()
    port = server.port
    server.stop()
    again = EmbeddedRedis(tmp_path).start()
    assert again.port == port  # a worker pointed at it reconnects after the restart
    again.stop()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        moved = EmbeddedRedis(tmp_path).start()
        try:
            assert moved.port != port and redis.Redis.from_url(moved.url).ping()
            assert stored_port_file(tmp_path).read_text().strip() == str(moved.port)
        finally:
            moved.stop()


def test_a_data_dir_has_one_owner_and_a_dead_owners_redis_is_stopped_first(tmp_path):
    from arena.ops.redis_server import DataDirInUseError

    first = EmbeddedRedis(tmp_path).start()
    try:
        with pytest.raises(DataDirInUseError,
                           match=f"data dir {tmp_path} is in use by another arena .*port {first.port}"):
            EmbeddedRedis(tmp_path).start()
        redis.Redis.from_url(first.url).set("kept", "yes")
        # As if the owning process had been killed: its lock is gone, its redis-server still runs.
        orphan = first._process
        first._lock.release()
        first._process = None
        second = EmbeddedRedis(tmp_path).start()
        try:
            assert second.took_over == orphan.pid
            assert orphan.wait(timeout=10) == 0  # stopped with SIGTERM: append-only file flushed
            assert redis.Redis.from_url(second.url).get("kept") == b"yes"
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_reconnecting_client_rides_out_a_restart(tmp_path):
    server = EmbeddedRedis(tmp_path).start()
    client = connect(server.url, reconnect_seconds=10)
    client.set("before", "1")
    server.stop()
    server = EmbeddedRedis(tmp_path).start()
    try:
        assert client.get("before") == b"1"  # the first command after the restart reconnects
    finally:
        server.stop()
