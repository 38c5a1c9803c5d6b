"""Demo models whose answers differ per call, for the regeneration tests: a regenerated answer
must visibly replace the one before it, and the real demo models answer a conversation the same
way every time. ``numbered_stack`` runs the whole arena on them (as ``serve --models`` would)."""

from __future__ import annotations

import itertools
import json
import threading
from contextlib import contextmanager

from arena.models.demo_models import DEMO_MODELS
from tests.helpers import WAIT_SECONDS, arena_settings


class NumberedModels:
    """The demo models, each answer ending in its call number (so no two answers are alike; from a
    model's second answer on, with a bold span), and every conversation each model was sent, in order.
    ``failing`` models fail every call after their first; ``named`` models name themselves from their
    second call on. ``held`` (set or not) holds every answer until it is set."""

    def __init__(self, failing=(), named=(), held: threading.Event | None = None):
        self.calls = itertools.count(1)
        self.sent: dict[str, list[tuple]] = {name: [] for name in DEMO_MODELS}
        self.failing, self.named, self.held = set(failing), set(named), held

    def models(self) -> dict:
        return {name: self._numbered(name, answer) for name, answer in DEMO_MODELS.items()}

    def _numbered(self, name, answer):
        def numbered(conversation):
            if self.held is not None:
                self.held.wait(WAIT_SECONDS)  # blocks the demo server's loop: every answer waits
            self.sent[name].append(conversation.messages)
            if name in self.failing and len(self.sent[name]) > 1:
                raise RuntimeError(f"{name} is down")
            asked = len(self.sent[name])
            signature = f" I am {name}." if name in self.named and asked > 1 else ""
            again = f" **take {asked}**" if asked > 1 else ""  # a later answer has a bold span more: other style
            return f"{answer(conversation)}{signature}{again} (answer {next(self.calls)})"
        return numbered


@contextmanager
def numbered_stack(redis_url: str, tmp_path, models: NumberedModels | None = None, token_delay: float = 0.001,
                   **settings):
    """The arena (ArenaStack) on NumberedModels served by a DemoServer (``token_delay`` seconds a
    token), ``settings`` over the tests' defaults."""
    from arena.cli.serve import ArenaStack
    from arena.models.demo_server import DemoServer

    models = models or NumberedModels()
    with DemoServer(token_delay=token_delay, models=models.models()) as server:
        models_file = tmp_path / "numbered-models.json"
        models_file.write_text(json.dumps({"models": [
            {"name": name, "base_url": server.url, "model_id": name, "max_retries": 0} for name in DEMO_MODELS]}))
        with ArenaStack(arena_settings(redis_url, tmp_path, models_file=models_file, demo=False, **settings)) as stack:
            stack.numbered_models = models
            yield stack
