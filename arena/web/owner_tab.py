"""The page's "My models" tab: an owner signs in with their token once (it is kept in a gr.State,
which Gradio holds on the server for that browser session, and the box is cleared), registers a
model, and watches, pauses, resumes, re-keys or deletes their models. It calls the same domain
code as the JSON API (arena.owners.service, arena.owners.view); nothing here decides a rule.
"""

from __future__ import annotations

import gradio as gr
import pandas as pd
from pydantic import ValidationError

from arena.models.config import PROVIDERS
from arena.owners.service import ModelRegistration, ModelUpdate, describe_validation
from arena.owners.store import OwnerError
from arena.owners.view import model_views
from arena.web.battle_view import PAGE_ONLY
from arena.web.context import ArenaContext

TABLE_COLUMNS = ("Model", "Status", "Why", "Votes", "Rating", "95% CI", "Latency p50 / p90 (ms)", "Last error")
SIGNED_OUT = "Enter the owner token the operator gave you (`python -m arena owners add NAME`)."


def models_frame(views: list[dict]) -> pd.DataFrame:
    rows = []
    for view in views:
        rating = f"{view['rating']:.0f}" if view["rating"] is not None else "-"
        interval = (f"{view['rating_lower']:.0f} to {view['rating_upper']:.0f}"
                    if view["rating_lower"] is not None else "-")
        latency = view["latency_ms"]
        latency_text = f"{latency['p50']:.0f} / {latency['p90']:.0f}" if latency["p50"] is not None else "-"
        last_error = view["recent_errors"][0] if view["recent_errors"] else None
        rows.append([view["name"], view["status"], view["reason"] or "", view["votes"], rating, interval, latency_text,
                     last_error["reason"] if last_error else ""])
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def number_fields(**boxes) -> tuple[dict, list[str]]:
    """The number boxes as the registration's ints and float, and the names of those that are empty
    or not a number."""
    numbers, bad = {}, []
    for name, value in boxes.items():
        try:
            numbers[name] = float(value) if name == "temperature" else int(value)
        except (TypeError, ValueError, OverflowError):  # None from an emptied box; inf or nan
            bad.append(name)
    return numbers, bad


class OwnerTab:
    def __init__(self, context: ArenaContext):
        self.context = context

    async def _owner(self, token):
        return await self.context.owners.store.authenticate(token) if token and self.context.owners else None

    async def _table(self, owner):
        views = await model_views(self.context.battles, await self.context.owners.store.models(owner.name))
        names = [view["name"] for view in views if view["status"] != "retired"]
        return models_frame(views), gr.update(choices=names, value=names[0] if names else None)

    async def sign_in(self, token_text, current_token):
        token_text = (token_text or "").strip()
        if not token_text:  # a second click on "Sign in" (the box is emptied after signing in): nothing changes
            current = await self._owner(current_token)
            still = f" You are signed in as **{current.name}**." if current else ""
            return gr.skip(), "", f"❌ Paste your owner token first.{still}", gr.skip(), gr.skip()
        owner = await self._owner(token_text)
        if owner is None:
            return None, "", "❌ That token is not valid (or was revoked).", models_frame([]), gr.update(choices=[])
        frame, choices = await self._table(owner)
        return token_text, "", f"Signed in as **{owner.name}**.", frame, choices

    async def refresh(self, token):
        owner = await self._owner(token)
        if owner is None:
            return models_frame([]), gr.update(choices=[])
        return await self._table(owner)

    async def register(self, token, name, provider, base_url, model_id, api_key, organisation, license_, description,
                       max_tokens, temperature, max_concurrent, anonymous):
        owner = await self._owner(token)
        if owner is None:
            return SIGNED_OUT, "", models_frame([]), gr.update()
        numbers, not_numbers = number_fields(max_tokens=max_tokens, temperature=temperature,
                                             max_concurrent=max_concurrent)
        if not_numbers:
            message = f"❌ {' and '.join(not_numbers)} must be a number: fill in the box"
        else:
            message = await self._register(owner, dict(
                name=(name or "").strip(), provider=provider, base_url=(base_url or "").strip(),
                model_id=(model_id or "").strip(), api_key=api_key or None, organisation=organisation or "",
                license=license_ or "", description=description or "", anonymous=bool(anonymous), **numbers))
        frame, choices = await self._table(owner)
        return message, "", frame, choices  # the key box is emptied either way

    async def _register(self, owner, fields: dict) -> str:
        """Register and say how it went; a refusal in the service's own words (the API's)."""
        try:
            model, report = await self.context.owners.register(owner, ModelRegistration(**fields))
        except ValidationError as exc:
            return f"❌ {describe_validation(exc)}"
        except OwnerError as error:  # a failed health check, a taken name, the quota...
            return f"❌ {error}"
        return (f"✅ Registered **{model.name}**: pending until the operator approves it. "
                f"Health check: first token after {report.first_token_ms:.0f} ms: “{report.first_tokens}”")

    def _action(self, make_update):
        async def act(token, name, new_key=None):
            owner = await self._owner(token)
            if owner is None:
                return SIGNED_OUT, "", models_frame([]), gr.update()
            try:
                if not name:
                    raise OwnerError("pick one of your models first")
                update = make_update(new_key)
                if update is None:
                    model = await self.context.owners.delete(owner, name)
                    message = f"🗑️ {model.name} retired: out of battles, key destroyed; its votes stay."
                else:
                    model, report = await self.context.owners.update(owner, name, update)
                    message = f"✅ {model.name} updated" + (f"; {report.summary()}" if report else "")
            except OwnerError as error:
                message = f"❌ {error}"
            frame, choices = await self._table(owner)
            return message, "", frame, choices
        return act

    def render(self) -> None:
        token = gr.State(None)  # server-side, per browser session
        gr.Markdown("## My models\nRegister your OpenAI-compatible or Hugging Face endpoint and watch how it does. "
                    + SIGNED_OUT)
        with gr.Row():
            token_box = gr.Textbox(label="Owner token", type="password", elem_id="owner-token", scale=4)
            sign_in = gr.Button("Sign in", elem_id="owner-sign-in", scale=1)
        signed_in = gr.Markdown("", elem_id="owner-signed-in")
        table = gr.Dataframe(headers=list(TABLE_COLUMNS), interactive=False, elem_id="owner-models")
        with gr.Accordion("Register a model", open=False):
            with gr.Row():
                name = gr.Textbox(label="Display name", elem_id="owner-name")
                provider = gr.Dropdown(list(PROVIDERS), value="openai", label="Provider", elem_id="owner-provider")
                model_id = gr.Textbox(label="Upstream model id", elem_id="owner-model-id")
            with gr.Row():
                base_url = gr.Textbox(label="Base URL (e.g. https://host/v1)", elem_id="owner-base-url")
                api_key = gr.Textbox(label="API key (stored encrypted, never shown)", type="password",
                                     elem_id="owner-api-key")
            with gr.Row():
                organisation = gr.Textbox(label="Organisation")
                license_ = gr.Textbox(label="Licence")
            description = gr.Textbox(label="Description (shown after the vote)", lines=2)
            with gr.Row():
                max_tokens = gr.Number(value=1024, label="max_tokens", precision=0, elem_id="owner-max-tokens")
                temperature = gr.Number(value=0.7, label="temperature")
                max_concurrent = gr.Number(value=4, label="max_concurrent", precision=0)
                anonymous = gr.Checkbox(value=True, label="May enter anonymous battles")
            register = gr.Button("Register and check", variant="primary", elem_id="owner-register")
        with gr.Accordion("Manage", open=False):
            chosen = gr.Dropdown([], label="Model", elem_id="owner-chosen")
            with gr.Row():
                pause, resume, delete = gr.Button("Pause"), gr.Button("Resume"), gr.Button("Delete", variant="stop")
            with gr.Row():
                new_key = gr.Textbox(label="New API key", type="password", scale=4)
                rotate = gr.Button("Rotate key", scale=1)
        result = gr.Markdown("", elem_id="owner-result")
        refresh = gr.Button("Refresh", size="sm")

        sign_in.click(self.sign_in, [token_box, token], [token, token_box, signed_in, table, chosen], **PAGE_ONLY)
        token_box.submit(self.sign_in, [token_box, token], [token, token_box, signed_in, table, chosen], **PAGE_ONLY)
        refresh.click(self.refresh, [token], [table, chosen], **PAGE_ONLY)
        register.click(self.register, [token, name, provider, base_url, model_id, api_key, organisation, license_,
                                       description, max_tokens, temperature, max_concurrent, anonymous],
                       [result, api_key, table, chosen], **PAGE_ONLY)
        outputs = [result, new_key, table, chosen]
        pause.click(self._action(lambda _: ModelUpdate(paused=True)), [token, chosen], outputs, **PAGE_ONLY)
        resume.click(self._action(lambda _: ModelUpdate(paused=False)), [token, chosen], outputs, **PAGE_ONLY)
        delete.click(self._action(lambda _: None), [token, chosen], outputs, **PAGE_ONLY)
        rotate.click(self._action(lambda key: ModelUpdate(api_key=key or None)), [token, chosen, new_key], outputs,
                     **PAGE_ONLY)
