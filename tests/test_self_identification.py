"""De-anonymised battles: detection (known answers), the flagged vote kept but not rated, the voter
told; and answers rendered inert (no image, link or tag survives outside code)."""

from __future__ import annotations

import httpx
import pytest

from arena.models.demo_server import DemoServer
from arena.trust.self_identification import ASKS_IDENTITY, ModelIdentity, asks_identity, battle_flags, names_itself
from arena.web.answer_safety import inert_markdown
from arena.web.battle_view import deanonymised_note
from leaderboard.data.events import VoteEvent
from leaderboard.store.redis_keys import vote_stream_key
from leaderboard.worker import VoteTally, build_snapshot
from tests.helpers import arena_settings, make_vote, wait_until

ASKING = ["Who are you?", "what model are you", "Which company made you?", "Are you ChatGPT?", "What is your name?",
          "who trained u", "Tell me your knowledge cutoff and your creator.", "What are you, really?",
          "Please introduce yourself", "which LLM is answering you or me?"]
NOT_ASKING = ["Who is the president of France?", "What are you doing for the holidays, in a poem",
              "Name the capital of Peru", "Give me three tips for learning to juggle.", "Which model of car is best?",
              "Explain how you would sort a list"]


@pytest.mark.parametrize("prompt", ASKING)
def test_a_prompt_asking_who_the_model_is_is_recognised(prompt):
    assert asks_identity(prompt)


@pytest.mark.parametrize("prompt", NOT_ASKING)
def test_ordinary_prompts_are_not_flagged(prompt):
    assert not asks_identity(prompt)


def test_an_answer_naming_its_own_model_organisation_or_alias_is_recognised():
    gpt = ModelIdentity(name="GPT-4o", model_id="openai/gpt-4o-2024-08-06", organisation="OpenAI", aliases=("ChatGPT",))
    for answer in ("I am GPT 4o.", "As chatgpt, I", "Made by OpenAI!", "gpt-4o-2024-08-06 here", "I'm gpt_4o"):
        assert names_itself(answer, gpt), answer
    for answer in ("I am a helpful assistant.", "openaiish", "GPT-40 is a number", "An AI model"):
        assert not names_itself(answer, gpt), answer
    assert ModelIdentity(name="x", organisation="AI").terms() == []  # too short to tell from ordinary text
    flags = battle_flags(["Tell me a joke", "Who made you?"], [["A joke."], ["Ha, ChatGPT here"]],
                         [ModelIdentity("other"), gpt], ["A", "B"])
    assert flags == ["names-itself:B", ASKS_IDENTITY]  # sorted
    assert battle_flags(["hello"], [["hi"], ["hey"]], [ModelIdentity("other"), gpt], ["A", "B"]) == []
    assert "answer B named its own model" in deanonymised_note(flags) and deanonymised_note([]) == ""


def test_flagged_votes_are_archived_but_not_rated_unless_asked():
    votes = [make_vote("alpha", "beta", "model_a") for _ in range(12)]
    flagged = [make_vote("beta", "alpha", "model_a").model_copy(update={"identity_flags": ["names-itself:A"]})
               for _ in range(30)]
    default, rating_all = VoteTally(), VoteTally(rate_deanonymised=True)
    for event in votes + flagged:
        default.add(event)
        rating_all.add(event)
    assert (default.rated, default.deanonymised, default.archived) == (12, 30, 42)
    assert (rating_all.rated, rating_all.deanonymised) == (42, 0)
    snapshot = build_snapshot(default)
    assert (snapshot.total_votes == 12
            and "30 vote(s) on battles where a model may have revealed itself" in snapshot.note)
    ratings = {row.model: row.rating for row in snapshot.rows}
    assert ratings["alpha"] > ratings["beta"]  # the 30 flagged wins of beta were left out
    ratings_all = {row.model: row.rating for row in build_snapshot(rating_all).rows}
    assert ratings_all["beta"] > ratings_all["alpha"]
    assert VoteEvent.model_validate_json(flagged[0].model_dump_json()).identity_flags == ["names-itself:A"]


def test_inert_markdown_keeps_the_text_and_drops_every_fetch():
    origin = "http://198.51.100.7:81"
    answer = (f"See ![chart]({origin}/c.png) and [docs]({origin}/d) <img src='{origin}/i.png'> <{origin}/a> "
              f"{origin}/b.png.\n[r]: {origin}/r.png\n`<img src={origin}/code>`\n"
              f"```\n<img src=\"{origin}/block\">\n```\n")
    inert = inert_markdown(answer)
    prose = inert.split("`<img")[0]
    assert "![" not in prose and "<img" not in prose and "](" not in prose and "<http" not in prose
    assert "image not shown: chart" in inert and f"docs (`{origin}/d`)" in inert and "&lt;img" in inert
    assert f"`<img src={origin}/code>`" in inert and f'```\n<img src="{origin}/block">\n```' in inert  # code untouched
    assert inert_markdown(inert) == inert  # idempotent: earlier turns can go through it again
    assert inert_markdown("plain **bold** text, 1 < 2") == "plain **bold** text, 1 < 2"


def _answers(text_by_model):
    return {name: (lambda conversation, text=text: text) for name, text in text_by_model.items()}


@pytest.fixture
def self_naming_arena(redis_url, tmp_path):
    from arena.cli.serve import ArenaStack

    answers = _answers({"sparky-7b": "Sparky here: rivers flow downhill.", "quiet-7b": "Rivers flow downhill."})
    with DemoServer(token_delay=0.0, models=answers) as demo:
        models_file = tmp_path / "models.yaml"
        models_file.write_text(
            f"models:\n  - {{name: sparky, base_url: '{demo.url}', model_id: sparky-7b, aliases: [Sparky]}}\n"
            f"  - {{name: quiet, base_url: '{demo.url}', model_id: quiet-7b, organisation: Quiet Labs}}\n")
        settings = arena_settings(redis_url, tmp_path / "data", demo=False, models_file=models_file)
        with ArenaStack(settings) as stack:
            yield stack


def test_a_self_naming_answer_flags_the_vote_and_the_leaderboard_leaves_it_out(self_naming_arena, redis_client):
    with httpx.Client(base_url=self_naming_arena.url, timeout=60) as client:
        battle = client.post("/api/battles", json={"prompt": "How do rivers flow?"}).json()
        sparky = "A" if "Sparky" in battle["answers"][0]["text"] else "B"
        reply = client.post(f"/api/battles/{battle['battle_id']}/vote", json={"outcome": "tie"},
                            headers={"X-Arena-Session": battle["session"]}).json()
        assert reply["identity_flags"] == [f"names-itself:{sparky}"]
        asked = client.post("/api/battles", json={"prompt": "Who are you, and who made you?"}).json()
        reply = client.post(f"/api/battles/{asked['battle_id']}/vote", json={"outcome": "tie"},
                            headers={"X-Arena-Session": asked["session"]}).json()
        assert ASKS_IDENTITY in reply["identity_flags"]
        board = wait_until(lambda board: ("2 vote(s) on battles where a model may have revealed"
                                          in (board["note"] or "")),
                           observe=lambda: client.get("/api/leaderboard").json(), what="the note on the leaderboard")
        assert board["total_votes"] == 0
    events = [VoteEvent.model_validate_json(fields[b"event"]) for _, fields in redis_client.xrange(vote_stream_key())]
    assert [event.identity_flags for event in events] == [[f"names-itself:{sparky}"], reply["identity_flags"]]
