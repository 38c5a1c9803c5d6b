"""The refusals of the live arena: each error a room raises when it refuses a request, with the
HTTP status that fits (arena.web.errors turns them into responses). A leaf: imports nothing of arena.

May import: nothing of arena (a leaf).
"""

from __future__ import annotations


class BattleError(Exception):
    """A request the battle engine refuses; ``status`` is the HTTP status that fits.

    ``retry_after`` (seconds), when set, becomes the response's Retry-After header. A message that
    names the battle keeps its id out of ``page_message``, the text the page shows (the page never
    shows a battle id: it is the handle a script would need to drive the battle elsewhere).
    """

    status = 400

    def __init__(self, message: str, *, retry_after: int | None = None, battle_id: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.battle_id = battle_id

    @property
    def page_message(self) -> str:
        text = str(self)
        if self.battle_id:
            text = text.replace(f"battle {self.battle_id!r}", "this battle")
            text = text.replace(f"battle {self.battle_id}", "this battle")
        return text


class BattleNotFound(BattleError):
    status = 404


class WrongSession(BattleError):
    status = 403


class BattleConflict(BattleError):
    status = 409


class InvalidVote(BattleError):
    status = 422


class UnknownLabel(BattleError):
    """A regeneration naming a side the battle does not have."""

    status = 422


class RegenerationOff(BattleError):
    """The operator turned regeneration off (``--max-regenerations 0``)."""

    status = 403


class RegenerationFailed(BattleError):
    """The model failed to answer again; the battle keeps the previous answer and stays votable."""

    status = 502


class NoModelsAvailable(BattleError):
    status = 503


class RateLimited(BattleError):
    status = 429


class ArenaBusy(BattleError):
    """This web process is already generating as many answers as it may (its answer budget)."""

    status = 503
