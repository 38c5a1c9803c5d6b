"""What the owners' stack tests share: the operator's commands run in-process, battles until a
model is seated, and the public model list."""

from __future__ import annotations

import httpx

from arena.cli.owners import main as owner_main


def cli(capsys, group: str, redis_url: str, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = owner_main(group, [*args, "--redis-url", redis_url])
    out, err = capsys.readouterr()
    return code, out, err


def battle_until(http: httpx.Client, model: str, bodies: list[str], attempts: int = 300) -> dict:
    """Battles (each voted, so the names are revealed) until one seats ``model``; its vote reply."""
    for _ in range(attempts):
        battle = http.post("/api/battles", json={"prompt": "Say something."})
        bodies.append(battle.text)
        assert battle.status_code == 200, battle.text
        battle = battle.json()
        if not battle["votable"]:
            continue
        vote = http.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "model_a"},
                         headers={"X-Arena-Session": battle["session"]})
        bodies.append(vote.text)
        if model in vote.json()["models"].values():
            return {"battle": battle, "vote": vote.json()}
    raise AssertionError(f"{model} never appeared in {attempts} battles")


def statuses(http: httpx.Client, bodies: list[str]) -> dict[str, str]:
    response = http.get("/api/models")
    bodies.append(response.text)
    return {m["model"]: m["status"] for m in response.json()["models"]}
