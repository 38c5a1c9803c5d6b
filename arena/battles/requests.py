"""What a voter may ask for when starting a battle: how many answers (K) and, in named mode, which
models. Checked before a battle is created, so a refused request creates nothing.

The operator chooses the K-way sizes voters may pick (``--kway-sizes``, default 4); a two-way
battle is always allowed. A named battle seats the models the voter picked (two, or one of the
K-way sizes), in the order picked; its votes (an outcome for two, a ranking for more) are
recorded with mode ``named`` and left out of the ratings. Any active model may be named, an
owner's model kept out of anonymous battles (``anonymous: false``) included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from arena.battles.text_checks import quoted
from arena.errors import BattleError, NoModelsAvailable
from arena.matchmaker.selection import Selection
from arena.models.availability import ModelStatus

SMALLEST_KWAY = 3
LARGEST_KWAY = 6


class InvalidBattleRequest(BattleError):
    status = 422


class KwaySizes(tuple):
    """The K-way sizes on offer, shown as they are written: ``3,4,6``."""

    def __str__(self) -> str:
        return ",".join(map(str, self))

    def __format__(self, spec: str) -> str:  # the banner and the README table format values
        return format(str(self), spec)


def kway_sizes(text: str) -> KwaySizes:
    """``"4"`` or ``"3,4,6"`` -> the sorted K-way sizes voters may choose, each 3 to 6."""
    try:
        sizes = sorted({int(part) for part in str(text).replace(" ", "").split(",") if part})
    except ValueError:
        raise ValueError(f"expected K values separated by commas, e.g. 4 or 3,4,6, got {text!r}") from None
    if not sizes or any(not SMALLEST_KWAY <= size <= LARGEST_KWAY for size in sizes):
        raise ValueError(f"each K-way size must be {SMALLEST_KWAY} to {LARGEST_KWAY}, got {text!r}")
    return KwaySizes(sizes)


def allowed_sizes(kway: Sequence[int]) -> tuple[int, ...]:
    """Every K a new battle may have: 2 and the operator's K-way sizes."""
    return (2, *sorted(set(kway) - {2}))


def check_size(k, kway: Sequence[int], seats: int | None = None) -> int:
    """K of a new battle, the one rule for it (the API checks it before anything is created, the
    engine again when it creates): an integer, 2 or one of the operator's K-way sizes ``kway``, and,
    given ``seats`` (the models the arena has), no more than them. InvalidBattleRequest (422) otherwise."""
    allowed = allowed_sizes(kway)
    if isinstance(k, bool) or not isinstance(k, int) or k not in allowed:
        raise InvalidBattleRequest(f"'k' must be one of {', '.join(map(str, allowed))} (the sizes this arena "
                                   f"offers), not {quoted(k)}")
    if seats is not None and k > seats:
        raise InvalidBattleRequest(f"a {k}-way battle needs {k} models but this arena has {seats}: "
                                   f"choose a size of 2 to {seats}")
    return k


@dataclass(frozen=True)
class NamedChoice:
    """Stands in for the matchmaker in a named battle: the voter's models, in the voter's order."""

    models: tuple[str, ...]

    def choose(self, available: Sequence[str], k: int) -> Selection:
        missing = [name for name in self.models if name not in available]
        if missing:
            raise NoModelsAvailable(f"{', '.join(missing)} cannot answer right now (paused, benched or full); "
                                    "pick another model or try again in a minute")
        return Selection(models=self.models, probability=1.0, strategy="named")


# Registered models that are not live (not yet or any more): a voter cannot pick them.
_NOT_LIVE = (ModelStatus.PENDING, ModelStatus.REJECTED, ModelStatus.RETIRED)
# Registrations the public does not see (an unreleased model's name is its owner's business until
# the operator approves it): to voters they do not exist.
UNPUBLISHED = (ModelStatus.PENDING, ModelStatus.REJECTED)


def public_statuses(statuses: Mapping[str, ModelStatus]) -> dict[str, ModelStatus]:
    """Every model's status as the public sees it (/api/models, named battles): no pending or rejected registrations."""
    return {name: status for name, status in statuses.items() if status not in UNPUBLISHED}


def named_choice(models, statuses: Mapping[str, ModelStatus], kway: Sequence[int] = ()) -> NamedChoice:
    """The voter's pick of models for a named battle; InvalidBattleRequest (422) naming what is wrong.
    ``statuses``: every model's status (BattleService.model_status: configured and owner models);
    ``kway``: the operator's K-way sizes (a named battle has 2 models or one of them)."""
    if not isinstance(models, (list, tuple)) or not all(isinstance(name, str) for name in models):
        raise InvalidBattleRequest("'models' must be a list of model names, e.g. [\"model-x\", \"model-y\"]")
    allowed = allowed_sizes(kway)
    if len(models) not in allowed:
        sizes = ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}" if len(allowed) > 1 else str(allowed[0])
        raise InvalidBattleRequest(f"a named battle has {sizes} models (the sizes this arena offers), "
                                   f"got {len(models)}")
    repeated = sorted({name for name in models if models.count(name) > 1})
    if repeated:
        raise InvalidBattleRequest(f"{', '.join(repeated)} is named twice: pick {len(models)} different models")
    statuses = public_statuses(statuses)
    live = [name for name, status in statuses.items() if status not in _NOT_LIVE]
    available = [name for name, status in statuses.items() if status == ModelStatus.ACTIVE]
    unknown = [name for name in models if name not in statuses]
    if unknown:
        raise InvalidBattleRequest(f"unknown model {', '.join(repr(name) for name in unknown)}: "
                                   f"choose from {', '.join(live)}")
    unavailable = [name for name in models if statuses[name] != ModelStatus.ACTIVE]
    if unavailable:
        reasons = "; ".join(f"{name} cannot answer right now ({statuses[name]})" for name in unavailable)
        raise InvalidBattleRequest(reasons + f": choose from {', '.join(available) or 'none at the moment'}")
    return NamedChoice(tuple(models))
