"""The deploy files say only what exists: files, services, volumes, commands, flags and variables.

There is no container engine or cluster here, so nothing is started from them: the Compose file
and the nginx configuration are read with a YAML parser and checked against the code, the
Kubernetes manifests are validated against the Kubernetes API schemas (kubernetes-validate,
strict) and rendered with kustomize where kubectl is installed, and the systemd units pass
``systemd-analyze verify`` where it is installed.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from arena.ops.redis_acl import ACL_USERS, ARENA_WEB, ARENA_WORKER, server_arguments
from arena.ops.redis_acl import main as acl_main
from arena.ops.settings import SERVE_SETTINGS, add_serve_arguments
from leaderboard.worker.cli import WORKER_SETTINGS
from leaderboard.worker.cli import build_parser as worker_parser
from tests.helpers import PROJECT_ROOT as ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTING_VARIABLES = {s.env for s in (*SERVE_SETTINGS, *WORKER_SETTINGS) if s.env}
SETTINGS_BY_VARIABLE = {s.env: s for s in (*SERVE_SETTINGS, *WORKER_SETTINGS) if s.env}
OFFICIAL_IMAGES = {"redis", "nginx"}  # Docker's official images; ours is built from deploy/Dockerfile
OUR_IMAGE = "arena"


def readme_table(title: str) -> dict[str, str]:
    """First column (a `variable`) -> second column of the table after the line ``title``."""
    text = (DEPLOY / "README.md").read_text()
    section = text[text.index(title):]
    rows = {}
    for line in section.splitlines()[1:]:
        if rows and not line.startswith("|"):
            break
        match = re.match(r"\| `([A-Z_]+)` \| ([^|]+) \|", line)
        if match:
            rows[match.group(1)] = match.group(2).strip()
    return rows


COMPOSE_VARIABLES = readme_table("### Compose variables")
CONTAINER_VARIABLES = readme_table("Variables the files set inside the containers")


def documented(variable: str) -> bool:
    return variable in SETTING_VARIABLES or variable in CONTAINER_VARIABLES or variable == "REDIS_URL"


def check_command(command: list[str]) -> None:
    """A container's or unit's command runs a module of ours with flags its parser accepts."""
    assert command[:2] == ["python", "-m"] or command[0].endswith("/python") and command[1] == "-m", command
    module, rest = command[2], command[3:]
    if module == "arena":
        assert rest[0] == "serve", command
        parser = argparse.ArgumentParser()
        add_serve_arguments(parser)
        parser.parse_args(rest[1:])
    elif module == "leaderboard":
        assert rest[0] == "worker", command
        worker_parser().parse_args(rest[1:])
    else:
        raise AssertionError(f"unknown module in {command}")


# -- Docker Compose and nginx ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def interpolated(text: str) -> dict[str, str | None]:
    """``${VAR}``, ``${VAR:-default}``, ``${VAR:?message}`` -> default (None when there is none)."""
    found = {}
    for name, operator, value in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", text):
        found[name] = value if operator == ":-" else None
    return found


def test_compose_services_files_and_volumes_exist(compose):
    services = compose["services"]
    assert set(services) == {"redis", "web", "worker", "proxy"}
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
            assert image.startswith("${ARENA_IMAGE:-" + OUR_IMAGE)
        else:
            repository, _, tag = image.partition(":")
            assert repository in OFFICIAL_IMAGES and tag and tag != "latest", (
                f"{name}: pin an official image, got {image}")
        for dependency in service.get("depends_on", []):
            assert dependency in services
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source}, which is not in deploy/"
            else:
                assert source in compose["volumes"], f"{name} mounts an undeclared volume {source}"
        for env_file in service.get("env_file", []):
            assert env_file["path"] == ".env" and env_file["required"] is False
    check_command(services["web"]["command"])
    check_command(services["worker"]["command"])
    assert services["web"]["deploy"]["replicas"] == "${ARENA_WEB_REPLICAS:-2}"


def test_every_compose_variable_is_documented_and_its_default_is_valid(compose):
    text = (DEPLOY / "docker-compose.yml").read_text()
    example = (DEPLOY / "compose" / "env.example").read_text()
    for variable, default in interpolated(text).items():
        assert variable in COMPOSE_VARIABLES, f"{variable} is used in docker-compose.yml but not documented"
        assert re.search(rf"^(# )?{variable}=", example, re.MULTILINE), f"{variable} missing from env.example"
        if default and variable in SETTINGS_BY_VARIABLE:
            SETTINGS_BY_VARIABLE[variable].from_env(default)  # raises if the setting refuses it
        if default is not None:
            assert COMPOSE_VARIABLES[variable].strip("`") == default or default == "", variable
        else:
            assert COMPOSE_VARIABLES[variable] == "required", variable
    assert set(COMPOSE_VARIABLES) == set(interpolated(text)), "deploy/README documents a variable nobody uses"
    for name in ("web", "worker"):
        for variable in compose["services"][name]["environment"]:
            assert documented(variable), f"{name} sets {variable}, which no setting or table documents"


def test_the_proxy_is_sticky_forwards_the_client_address_and_is_the_only_trusted_peer(compose):
    services = compose["services"]
    proxy_address = services["proxy"]["networks"]["arena"]["ipv4_address"]
    subnet = ipaddress.ip_network(compose["networks"]["arena"]["ipam"]["config"][0]["subnet"])
    assert ipaddress.ip_address(proxy_address) in subnet
    environment = services["web"]["environment"]
    assert environment["ARENA_TRUSTED_PROXIES"] == environment["FORWARDED_ALLOW_IPS"] == proxy_address
    nginx = (DEPLOY / "compose" / "nginx.conf").read_text()
    assert f"server web:{environment['ARENA_PORT']} resolve;" in nginx
    assert "hash $arena_route consistent;" in nginx and "Set-Cookie \"arena_route=$arena_route" in nginx
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in nginx
    assert "proxy_buffering off;" in nginx
    mounted = [m for m in services["proxy"]["volumes"] if m.endswith("/etc/nginx/conf.d/default.conf:ro")]
    assert mounted == ["./compose/nginx.conf:/etc/nginx/conf.d/default.conf:ro"]
    # stopping replicas get time to drain
    assert (int(services["web"]["stop_grace_period"].rstrip("s"))
            > int(environment["ARENA_SHUTDOWN_GRACE"].split(":-")[1].rstrip("}")))


def test_the_dockerfile_is_slim_non_root_pinned_and_checks_health():
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())  # join continued lines
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert instructions[0].startswith("FROM python:3.11-slim")
    assert "RUN pip install --no-compile -r requirements.txt" in instructions
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for line in instructions:
        if line.startswith("COPY "):
            source = line.split()[1]
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert f"!{source.rstrip('/')}/" in ignored or f"!{source}" in ignored, (
                f"{source} is not in the build context")
    healthcheck = next(line for line in instructions if line.startswith("HEALTHCHECK "))
    assert "CMD [\"python\", \"-c\"" in healthcheck and "/healthz" in healthcheck
    command = next(line for line in instructions if line.startswith("CMD "))
    check_command(json.loads(command[4:]))


# -- Kubernetes -----------------------------------------------------------------------------------

def k8s_documents() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def test_the_manifests_pass_the_kubernetes_api_schemas():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    documents = k8s_documents()
    assert {doc["kind"] for _, doc in documents} == {
        "ConfigMap", "Secret", "Service", "StatefulSet", "Deployment", "HorizontalPodAutoscaler",
        "PodDisruptionBudget", "PersistentVolumeClaim", "Ingress"}
    for name, doc in documents:
        kubernetes_validate.validate(doc, "1.37.0", strict=True)
    # the validator does catch a mistake (a misspelt field)
    broken = next(doc for _, doc in documents if doc["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(broken))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37.0", strict=True)


def test_the_kustomization_renders_and_lists_every_manifest_but_the_example_secret():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the kustomize rendering was not checked")
    rendered = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(rendered.stdout) if doc]
    assert len(kinds) == sum(1 for name, _ in k8s_documents() if name != "secret.example.yaml")


def test_the_manifests_refer_only_to_what_they_define():
    documents = [doc for _, doc in k8s_documents()]
    by_kind: dict[str, dict[str, dict]] = {}
    for doc in documents:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    secrets = {name: set(doc["stringData"]) for name, doc in by_kind["Secret"].items()}
    config = by_kind["ConfigMap"]["arena-config"]["data"]
    pods = {**by_kind["Deployment"], **by_kind["StatefulSet"]}
    for name, workload in pods.items():
        template = workload["spec"]["template"]
        labels = template["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items(), name
        volumes = {volume["name"]: volume for volume in template["spec"].get("volumes", [])}
        claims = {claim["metadata"]["name"] for claim in workload["spec"].get("volumeClaimTemplates", [])}
        for container in template["spec"]["containers"]:
            ports = {port["name"] for port in container.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                http = container.get(probe, {}).get("httpGet")
                if http:
                    assert http["path"] == "/healthz" and http["port"] in ports, (name, probe)
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in by_kind["ConfigMap"]
                else:
                    assert source["secretRef"]["name"] in secrets
            for variable in container.get("env", []):
                ref = variable.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in secrets[ref["name"]], (name, ref)
                if container["image"] == OUR_IMAGE:
                    assert documented(variable["name"]), f"{name} sets {variable['name']}, which nothing documents"
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes or mount["name"] in claims, (name, mount)
            if container["image"] == OUR_IMAGE:
                check_command(container["command"])
                assert template["spec"]["securityContext"]["runAsNonRoot"] is True
            else:
                repository, _, tag = container["image"].partition(":")
                assert repository in OFFICIAL_IMAGES and tag and tag != "latest"
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in by_kind["PersistentVolumeClaim"]
            if "configMap" in volume:
                for item in volume["configMap"].get("items", []):
                    assert item["key"] in config
    for variable in config:
        if variable.isupper():
            assert documented(variable), f"configmap.yaml sets {variable}, which nothing documents"
            if variable in SETTINGS_BY_VARIABLE and config[variable]:
                SETTINGS_BY_VARIABLE[variable].from_env(config[variable])
    web_labels = pods["arena-web"]["spec"]["template"]["metadata"]["labels"]
    for service in by_kind["Service"].values():
        assert any(service["spec"]["selector"].items() <= pod["spec"]["template"]["metadata"]["labels"].items()
                   for pod in pods.values()), service["metadata"]["name"]
    assert by_kind["PodDisruptionBudget"]["arena-web"]["spec"]["selector"]["matchLabels"].items() <= web_labels.items()
    assert by_kind["HorizontalPodAutoscaler"]["arena-web"]["spec"]["scaleTargetRef"]["name"] in by_kind["Deployment"]
    backend = by_kind["Ingress"]["arena"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] in by_kind["Service"]
    assert by_kind["Ingress"]["arena"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert by_kind["Deployment"]["arena-worker"]["spec"]["replicas"] == 1
    # the pod is given longer than its drain: the preStop pause plus the shutdown grace
    web_spec = pods["arena-web"]["spec"]["template"]["spec"]
    pause = int(web_spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    assert web_spec["terminationGracePeriodSeconds"] > pause + float(config["ARENA_SHUTDOWN_GRACE"])


# -- systemd --------------------------------------------------------------------------------------

UNITS = sorted(DEPLOY.glob("*.service"))


@pytest.mark.parametrize("unit", UNITS, ids=[unit.name for unit in UNITS])
def test_a_systemd_unit_has_no_inline_comments_and_runs_a_real_command(unit):
    for number, line in enumerate(unit.read_text().splitlines(), start=1):
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            assert "#" not in line, f"{unit.name}:{number}: systemd does not allow a comment after a value"
    exec_start = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    check_command(shlex.split(exec_start.removeprefix("ExecStart=")))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    # the units name /opt/arena; here the code (and its .venv) are in this checkout
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/arena", str(ROOT)))
        copies.append(str(copy))
    verified = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and verified.stderr == "", verified.stderr  # it warns without failing


# -- Redis ACL users (arena.ops.redis_acl) ---------------------------------------------------------

def acl_arguments(command: list[str]) -> list[str]:
    """The ``--user`` arguments of a redis-server command line (from the first ``--user`` on)."""
    return command[command.index("--user"):]


def test_compose_starts_redis_with_the_acl_users_and_gives_each_service_its_own(compose):
    services = compose["services"]
    passwords = {user.name: f"${{{user.password_variable}:?set {user.password_variable} in deploy/.env}}"
                 for user in ACL_USERS}
    assert acl_arguments(services["redis"]["command"]) == server_arguments(passwords, prefix="${ARENA_PREFIX:-arena}")
    assert services["redis"]["image"].partition(":")[2] >= "7"  # selectors and %R~ need Redis 7
    for service, user in (("web", ARENA_WEB), ("worker", ARENA_WORKER)):
        environment = services[service]["environment"]
        assert environment["REDIS_URL"] == f"redis://{user.name}:{passwords[user.name]}@redis:6379/0"
        assert "REDIS_PASSWORD" not in environment and "REDIS_PASSWORD" not in str(environment)
    example = (DEPLOY / "compose" / "env.example").read_text()
    for user in ACL_USERS:
        assert re.search(rf"^{user.password_variable}=.+", example, re.MULTILINE)


def test_kubernetes_starts_redis_with_the_acl_users_from_the_secret_and_each_pod_logs_in_as_its_own():
    documents = k8s_documents()
    by_name = {doc["metadata"]["name"]: doc for _, doc in documents if doc["kind"] in ("StatefulSet", "Deployment")}
    redis_container = by_name["arena-redis"]["spec"]["template"]["spec"]["containers"][0]
    passwords = {user.name: f"$({user.password_variable})" for user in ACL_USERS}
    assert acl_arguments(redis_container["args"]) == server_arguments(passwords, prefix="$(ARENA_PREFIX)")
    assert redis_container["image"].partition(":")[2] >= "7"
    redis_env = {variable["name"]: variable["valueFrom"] for variable in redis_container["env"]}
    assert redis_env["ARENA_PREFIX"]["configMapKeyRef"] == {"name": "arena-config", "key": "ARENA_PREFIX"}
    for user in ACL_USERS:
        assert redis_env[user.password_variable]["secretKeyRef"] == {"name": "arena-secrets",
                                                                     "key": user.password_variable}
    for deployment, user in (("arena-web", ARENA_WEB), ("arena-worker", ARENA_WORKER)):
        container = by_name[deployment]["spec"]["template"]["spec"]["containers"][0]
        env = {variable["name"]: variable for variable in container["env"]}
        assert env["REDIS_URL"]["value"] == f"redis://{user.name}:$({user.password_variable})@arena-redis:6379/0"
        assert env[user.password_variable]["valueFrom"]["secretKeyRef"]["key"] == user.password_variable
        assert "REDIS_PASSWORD" not in env  # the operator's password stays out of the service pods
    secret = next(doc for _, doc in documents if doc["kind"] == "Secret" and doc["metadata"]["name"] == "arena-secrets")
    assert {user.password_variable for user in ACL_USERS} <= set(secret["stringData"])


def test_the_readme_names_every_acl_user_and_the_printed_rules_match_the_table(capsys):
    readme = (DEPLOY / "README.md").read_text()
    for user in ACL_USERS:
        assert f"`{user.name}`" in readme and user.password_variable in readme
    acl_main(["--prefix", "arena"])
    printed = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in printed] == [user.name for user in ACL_USERS]
    assert "not yet in these files" not in readme
