"""Which models the arena serves: the ``ModelSpec`` contract and its YAML/JSON config file.

A config file names each model's endpoint and the *name of an environment variable* holding
its API key; keys never live in the file, in a ``ModelSpec`` or in any message. The format
is documented in docs/models.md.

``check_endpoint_url`` is the guard for endpoints registered by model owners (not for the
operator's own config file, which is trusted): it refuses URLs that would let a stranger
make the server call into its own machine or private network.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from arena.trust.ssrf import check_address, split_url

Provider = Literal["openai", "huggingface"]
PROVIDERS: tuple[str, ...] = get_args(Provider)


class ModelConfigError(ValueError):
    """A model config file (or one entry in it) is invalid; the message names the file, entry and field."""


class ModelSpec(BaseModel):
    """One model the arena can ask: where its endpoint is and how to call it.

    ``name`` is the display name (shown after a vote, used in the leaderboard and in vote
    events); ``model_id`` is what the endpoint expects in the request's ``model`` field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    provider: Provider = "openai"
    base_url: str
    model_id: str = Field(min_length=1)
    api_key_env: str | None = Field(
        default=None,
        description="name of the environment variable holding the API key (never the key itself)",
    )
    max_tokens: int = Field(default=1024, gt=0, le=1_000_000)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    timeout: float = Field(
        default=60.0,
        gt=0,
        description="seconds to wait for the connection, the first token and each later chunk",
    )
    max_answer_seconds: float = Field(default=300.0, gt=0, description="wall-clock limit for a whole answer")
    max_concurrent: int | None = Field(
        default=None,
        gt=0,
        description="most answers this endpoint may be generating at once; while it is at that many the "
                    "matchmaker leaves the model out of new battles (unset: no limit)",
    )
    max_retries: int = Field(
        default=1,
        ge=0,
        le=10,
        description="retries of failed connections and 408/429/5xx answers before streaming starts (openai provider)",
    )
    system_prompt: str | None = Field(default=None, description="sent as the first message of every conversation")
    description: str = Field(default="", max_length=2000, description="shown to voters after the vote")
    organisation: str = Field(default="", max_length=200,
                              description="who made the model; shown on the leaderboard and after the vote")
    license: str = Field(default="", max_length=200,
                         description="the model's licence, e.g. 'Apache-2.0' or 'proprietary'; "
                                     "shown on the leaderboard")
    # a list in the file; a tuple here so the frozen spec stays hashable
    aliases: tuple[str, ...] = Field(default=(), max_length=50,
                               description="other names the model may call itself (e.g. 'ChatGPT'); an answer naming "
                                           "its own name, model id, organisation or an alias marks the battle "
                                           "(arena.trust.self_identification)")

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for alias in value:
            if not alias.strip() or len(alias) > 100:
                raise ValueError(f"each alias must be 1 to 100 characters and not blank, got {alias[:100]!r}")
        return value

    @field_validator("name", "model_id")
    @classmethod
    def _no_surrounding_whitespace(cls, value: str) -> str:
        if value != value.strip() or any(ch in value for ch in "\r\n\t"):
            raise ValueError("must not start or end with whitespace or contain tabs or newlines")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
        if parts.username or parts.password:
            # Credentials in a URL end up in logs and error messages; keys go in api_key_env.
            raise ValueError("must not contain a user name or password; put the key in the variable named by "
                             "api_key_env")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_var_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value or not all(ch.isalnum() or ch == "_" for ch in value) or value[0].isdigit():
            # A value that is not a variable name is most likely a key pasted in by mistake:
            # say so without repeating it.
            raise ValueError(
                "must be the NAME of an environment variable (letters, digits, underscores, e.g. OPENAI_API_KEY), "
                "not the key itself"
            )
        return value

    def api_key(self) -> str | None:
        """The key from the environment variable named by ``api_key_env`` (None if none is named).

        Raises ModelConfigError naming the variable (never a value) when it is named but unset.
        """
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ModelConfigError(
                f"model {self.name!r}: environment variable {self.api_key_env} (api_key_env) is not set; "
                f"export it with the endpoint's API key, or remove api_key_env if the endpoint needs none"
            )
        return key


def load_model_specs(path: str | Path) -> list[ModelSpec]:
    """Read a models file (``.yaml``/``.yml`` or ``.json``, format in docs/models.md).

    The file is a mapping with a ``models`` list and an optional ``defaults`` mapping merged
    under every entry. Every problem raises ModelConfigError naming the file, the entry
    (index and name) and the field. Environment variables named by ``api_key_env`` must be set.
    """
    path = Path(path)
    document = _read_document(path)
    if not isinstance(document, Mapping) or "models" not in document:
        raise ModelConfigError(f"{path}: expected a mapping with a 'models' list at the top level (see docs/models.md)")
    unknown_keys = set(document) - {"models", "defaults"}
    if unknown_keys:
        raise ModelConfigError(f"{path}: unknown top-level key(s) {sorted(unknown_keys)}; only 'models' and 'defaults' "
                               "are allowed")
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        raise ModelConfigError(f"{path}: 'defaults' must be a mapping of field: value")
    entries = document["models"]
    if not isinstance(entries, list) or not entries:
        raise ModelConfigError(f"{path}: 'models' must be a non-empty list of model entries")

    specs: list[ModelSpec] = []
    first_index_by_name: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise ModelConfigError(f"{path}: model #{index}: expected a mapping of field: value, "
                                   f"got {type(entry).__name__}")
        where = _entry_label(path, index, entry)
        spec = _parse_entry(where, {**defaults, **entry})
        if spec.name in first_index_by_name:
            raise ModelConfigError(
                f"{where}: field 'name': duplicate name {spec.name!r} (also model #{first_index_by_name[spec.name]}); "
                f"display names must be unique"
            )
        first_index_by_name[spec.name] = index
        try:
            spec.api_key()
        except ModelConfigError as exc:
            raise ModelConfigError(f"{path}: model #{index}: {exc}") from None
        specs.append(spec)
    return specs


def _read_document(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise ModelConfigError(f"{path}: unsupported extension {suffix!r}; use .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelConfigError(f"{path}: cannot read the models file: {exc.strerror or exc}") from None
    try:
        return json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ModelConfigError(f"{path}: not valid {'JSON' if suffix == '.json' else 'YAML'}: {exc}") from None


def _entry_label(path: Path, index: int, entry: Mapping) -> str:
    name = entry.get("name")
    return f"{path}: model #{index} ({name!r})" if isinstance(name, str) and name else f"{path}: model #{index}"


def _parse_entry(where: str, fields: dict[str, Any]) -> ModelSpec:
    try:
        return ModelSpec(**fields)
    except ValidationError as exc:
        problems = [_describe_error(error) for error in exc.errors()]
        raise ModelConfigError(f"{where}: " + "; ".join(problems)) from None


def _describe_error(error: Mapping[str, Any]) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "(entry)"
    kind = error["type"]
    if kind == "missing":
        return f"field {field!r}: missing (required)"
    if kind == "extra_forbidden":
        return f"field {field!r}: unknown field (see docs/models.md for the allowed fields)"
    if kind == "literal_error" and field == "provider":
        return f"field 'provider': unknown provider {error.get('input')!r}; use one of {', '.join(PROVIDERS)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if field == "api_key_env":
        # Never echo the input: it may be a key pasted where its variable's name belongs.
        return f"field 'api_key_env': {message}"
    return f"field {field!r}: {message} (got {error.get('input')!r})"


def check_endpoint_url(url: str, allow_private: bool = False, resolve=socket.getaddrinfo) -> None:
    """Raise ValueError unless ``url`` is an http(s) URL whose host resolves only to public addresses.

    Meant for endpoints registered by model owners, so a registration cannot point the server
    at itself or the private network behind it (SSRF). Every address the host name resolves to
    must be public unicast (the rule is ``arena.trust.ssrf.refusal``); ``allow_private=True`` skips the
    address check (for operators who want owners to register endpoints on their own network).
    ``resolve`` has ``socket.getaddrinfo``'s signature (tests inject one).

    This is the registration-time check; the connection-time one, against the address actually
    connected to, is ``arena.trust.ssrf.GuardedNetworkBackend``.
    """

    scheme, host, port = split_url(url)
    if allow_private:
        return
    literal = host.strip("[]")
    try:
        ipaddress.ip_address(literal)
        addresses = [literal]
    except ValueError:
        try:
            infos = resolve(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise ValueError(f"endpoint host {host!r} does not resolve ({exc}); check the URL") from None
        addresses = [info[4][0] for info in infos]
    for address in addresses:
        check_address(host, address)
