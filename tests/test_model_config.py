"""Model config files (YAML/JSON) and the endpoint URL guard."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest

from arena.models.config import ModelConfigError, ModelSpec, check_endpoint_url, load_model_specs

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "models.yaml"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_file_loads(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-example")
    monkeypatch.setenv("HF_TOKEN", "hf_example")
    specs = load_model_specs(EXAMPLE)
    assert len(specs) == 5
    assert {spec.provider for spec in specs} == {"openai", "huggingface"}
    assert all(spec.max_tokens == 1024 for spec in specs)  # from defaults
    llama = next(spec for spec in specs if spec.model_id == "llama3.2")
    assert llama.temperature == 0.6  # the entry's own value beats the default


def test_yaml_and_json_give_the_same_specs(tmp_path):
    document = {
        "defaults": {"timeout": 12},
        "models": [
            {"name": "Local", "base_url": "http://127.0.0.1:8000/v1/", "model_id": "m"},
            {"name": "Hub", "provider": "huggingface", "base_url": "https://example.org", "model_id": "tgi"},
        ],
    }
    from_json = load_model_specs(write(tmp_path, "models.json", json.dumps(document)))
    from_yaml = load_model_specs(write(tmp_path, "models.yml", json.dumps(document)))  # JSON is YAML
    assert from_json == from_yaml
    assert from_json[0].base_url == "http://127.0.0.1:8000/v1"  # trailing slash dropped
    assert from_json[0].provider == "openai" and from_json[0].timeout == 12


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"name": "A", "base_url": "http://h/v1"}, r"model #1 \('A'\): field 'model_id': missing"),
        ({"base_url": "http://h/v1", "model_id": "m"}, r"model #1: field 'name': missing"),
        ({"name": "A", "provider": "anthropic", "base_url": "http://h/v1", "model_id": "m"},
         r"field 'provider': unknown provider 'anthropic'; use one of openai, huggingface"),
        ({"name": "A", "base_url": "ftp://h/v1", "model_id": "m"}, r"field 'base_url': must be an http"),
        ({"name": "A", "base_url": "http://h/v1", "model_id": "m", "temprature": 1},
         r"field 'temprature': unknown field"),
        ({"name": "A", "base_url": "http://h/v1", "model_id": "m", "temperature": 3},
         r"field 'temperature': .*less than or equal to 2"),
        ({"name": "First", "base_url": "http://h/v1", "model_id": "m"},
         r"field 'name': duplicate name 'First' \(also model #0\)"),
    ],
)
def test_bad_entries_name_the_file_entry_and_field(tmp_path, entry, expected):
    first = {"name": "First", "base_url": "http://h/v1", "model_id": "m"}
    path = write(tmp_path, "models.yaml", json.dumps({"models": [first, entry]}))
    with pytest.raises(ModelConfigError, match=expected) as raised:
        load_model_specs(path)
    assert str(raised.value).startswith(f"{path}: model #1")


def test_an_unset_key_variable_is_named_without_any_value(tmp_path, monkeypatch):
    monkeypatch.delenv("ARENA_TEST_MISSING_KEY", raising=False)
    path = write(
        tmp_path,
        "models.yaml",
        "models:\n  - {name: Paid, base_url: 'https://api.example.com/v1', model_id: m, "
        "api_key_env: ARENA_TEST_MISSING_KEY}\n",
    )
    with pytest.raises(ModelConfigError, match=r"model #0: model 'Paid': environment variable ARENA_TEST_MISSING_KEY"):
        load_model_specs(path)
    monkeypatch.setenv("ARENA_TEST_MISSING_KEY", "sk-now-set")
    [spec] = load_model_specs(path)
    assert spec.api_key() == "sk-now-set"
    assert "sk-now-set" not in repr(spec) and "sk-now-set" not in spec.model_dump_json()


def test_a_key_pasted_into_api_key_env_is_refused_without_echoing_it(tmp_path):
    pasted = "sk-proj-abc123-very-secret"
    path = write(tmp_path, "models.yaml", json.dumps(
        {"models": [{"name": "A", "base_url": "http://h/v1", "model_id": "m", "api_key_env": pasted}]}
    ))
    with pytest.raises(ModelConfigError, match="NAME of an environment variable") as raised:
        load_model_specs(path)
    assert pasted not in str(raised.value)


def test_credentials_in_the_url_are_refused():
    with pytest.raises(pydantic.ValidationError, match="must not contain a user name or password"):
        ModelSpec(name="A", base_url="https://user:secret@h/v1", model_id="m")


@pytest.mark.parametrize(
    ("file_name", "text", "expected"),
    [
        ("models.toml", "", "unsupported extension '.toml'"),
        ("models.yaml", "models: [\n", "not valid YAML"),
        ("models.json", "{", "not valid JSON"),
        ("models.yaml", "- name: A\n", "expected a mapping with a 'models' list"),
        ("models.yaml", "models: []\n", "'models' must be a non-empty list"),
        ("models.yaml", "models: [{name: A, base_url: 'http://h', model_id: m}]\nmodel: x\n", "unknown top-level key"),
        ("models.yaml", "models: [just-a-string]\n", "model #0: expected a mapping"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path, file_name, text, expected):
    path = write(tmp_path, file_name, text)
    with pytest.raises(ModelConfigError, match=expected) as raised:
        load_model_specs(path)
    assert str(path) in str(raised.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ModelConfigError, match="cannot read the models file"):
        load_model_specs(tmp_path / "absent.yaml")


def test_specs_are_frozen():
    spec = ModelSpec(name="A", base_url="http://h/v1", model_id="m")
    with pytest.raises(pydantic.ValidationError):
        spec.name = "B"
    assert hash(spec) == hash(ModelSpec(name="A", base_url="http://h/v1", model_id="m"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost/v1",
        "http://10.1.2.3/v1",
        "http://172.16.0.1/v1",
        "http://192.168.1.10/v1",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata service
        "http://100.64.0.1/v1",  # carrier-grade NAT
        "http://0.0.0.0:8000/v1",
        "http://[::1]:8000/v1",
        "http://[fe80::1]/v1",
        "http://[fd00::1]/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://[2002:7f00:1::]/v1",  # 6to4 wrapping 127.0.0.1
        "http://224.0.0.1/v1",
    ],
)
def test_non_public_addresses_are_refused(url):
    with pytest.raises(ValueError, match="non-public address"):
        check_endpoint_url(url, allow_private=False)
    check_endpoint_url(url, allow_private=True)  # an operator may allow its own network


@pytest.mark.parametrize("url", ["https://8.8.8.8/v1", "http://[2001:4860:4860::8888]:8080/v1", "https://1.1.1.1"])
def test_public_addresses_pass(url):
    check_endpoint_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://8.8.8.8/v1", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("http:///v1", "has no host name"),
        ("http://8.8.8.8:99999/v1", "invalid port"),
        ("https://user:pw@8.8.8.8/v1", "must not contain a user name or password"),
        ("http://no-such-host.invalid/v1", "does not resolve"),
    ],
)
def test_malformed_or_unresolvable_urls_are_refused(url, expected):
    with pytest.raises(ValueError, match=expected):
        check_endpoint_url(url, allow_private=False)
