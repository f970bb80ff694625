"""deploy/: the kustomize base and overlays render, are valid Kubernetes, and run the services.

Rendering uses `kubectl kustomize` (kubectl ships kustomize); validation uses the
Kubernetes OpenAPI schemas shipped by `kubernetes-validate`. KafkaTopic is a Strimzi
custom resource those schemas do not know: it is checked structurally here."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy.tests.conftest import (
    AWS_ENV,
    REPO_ROOT,
    SERVICE_IDS,
    SERVICES,
    Service,
    SettingsLoader,
    consumer_groups,
)

from reminder_contracts.topics import ALL_TOPICS, dead_letter_topic

pytestmark = pytest.mark.unit

DEPLOY = REPO_ROOT / "deploy"
OVERLAYS = ("dev", "prod")
KUSTOMIZATIONS = ("base", *OVERLAYS)
KUBERNETES_VERSION = "1.31.0"  # oldest version the manifests must work on
#: Values of the Secrets operators create (see deploy/README.md), for the settings check.
SECRET_VALUES = {
    "DATABASE_URL": "mysql+pymysql://svc:pw@mysql.example.internal:3306/svc?charset=utf8mb4",
    "ADMIN_API_TOKENS": "admin:0123456789abcdef0123456789abcdef",
}

Manifest = dict[str, Any]


def kustomization_dir(name: str) -> Path:
    return DEPLOY / name if name == "base" else DEPLOY / "overlays" / name


@functools.cache
def render(name: str) -> tuple[Manifest, ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (which includes kustomize) is needed to render deploy/"
    result = subprocess.run(
        [kubectl, "kustomize", str(kustomization_dir(name))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(manifests: tuple[Manifest, ...], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def container(workload: Manifest) -> Manifest:
    (only,) = workload["spec"]["template"]["spec"]["containers"]
    result: Manifest = only
    return result


def config_env(manifests: tuple[Manifest, ...], workload: Manifest) -> dict[str, str]:
    """The environment a workload's container gets: ConfigMaps, then env (secrets filled)."""
    config_maps = of_kind(manifests, "ConfigMap")
    env: dict[str, str] = {}
    spec = container(workload)
    for source in spec.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in config_maps, f"ConfigMap {name} is not part of the rendered output"
        env.update(config_maps[name]["data"])
    for var in spec.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            env[var["name"]] = SECRET_VALUES[var["valueFrom"]["secretKeyRef"]["key"]]
    return env


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------- schemas


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_manifest_is_valid_kubernetes(name: str) -> None:
    checked = 0
    for manifest in render(name):
        if manifest["apiVersion"].startswith("kafka.strimzi.io/"):
            continue  # a custom resource: see the KafkaTopic tests
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest['kind']}/{manifest['metadata']['name']}: {exc.message}")
        checked += 1
    assert checked >= 4 * 4  # per service at least Deployment, Service, PDB, Job


def test_validation_rejects_a_misspelt_field() -> None:
    """The validator is strict (so the test above means something)."""
    deployment = dict(of_kind(render("base"), "Deployment")["sender"])
    deployment["spec"] = {**deployment["spec"], "replicaz": 2}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_topics_are_the_contracts_topics_as_strimzi_kafka_topics(name: str) -> None:
    topics = of_kind(render(name), "KafkaTopic")
    expected = set(ALL_TOPICS) | {dead_letter_topic(g) for g in consumer_groups()}
    assert set(topics) == expected
    for topic_name, topic in topics.items():
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "reminders"
        spec = topic["spec"]
        assert set(spec) <= {"topicName", "partitions", "replicas", "config"}
        assert spec["topicName"] == topic_name
        assert isinstance(spec["partitions"], int)
        assert spec["partitions"] >= 1
        assert isinstance(spec["replicas"], int)
        assert spec["replicas"] >= 1
        config = spec["config"]
        assert all(isinstance(v, str | int) for v in config.values())
        assert int(config["min.insync.replicas"]) <= spec["replicas"]
        assert int(config["retention.ms"]) > 0


def test_prod_topics_survive_a_broker_loss_and_dev_fits_one_broker() -> None:
    for topic in of_kind(render("prod"), "KafkaTopic").values():
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == "2"
    for topic in of_kind(render("dev"), "KafkaTopic").values():
        assert topic["spec"]["replicas"] == 1
        assert topic["spec"]["config"]["min.insync.replicas"] == "1"


# ---------------------------------------------------------------- per service


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_deployment_runs_the_service_safely(name: str, service: Service) -> None:
    deployment = of_kind(render(name), "Deployment")[service.name]
    pod = deployment["spec"]["template"]["spec"]
    spec = container(deployment)
    assert spec["args"] == ["python", "-m", service.package]
    (port,) = spec["ports"]
    assert port == {"name": "http", "containerPort": service.port, "protocol": "TCP"}
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    for kind in ("requests", "limits"):
        assert set(spec["resources"][kind]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    security = spec["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in spec["volumeMounts"]
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(deployment))


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_secrets_come_by_reference_only(name: str, service: Service) -> None:
    manifests = render(name)
    assert not of_kind(manifests, "Secret"), "operators create Secrets, not the manifests"
    workloads = [of_kind(manifests, "Deployment")[service.name]]
    workloads.append(of_kind(manifests, "Job")[f"{service.name}-migrate"])
    for workload in workloads:
        env = container(workload).get("env", [])
        secret_refs = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in env if "valueFrom" in v}
        assert "DATABASE_URL" in secret_refs
        for var_name, ref in secret_refs.items():
            assert ref == {"name": f"{service.name}-secrets", "key": var_name}
        inline = {v["name"] for v in env if "value" in v}
        assert not inline & set(SECRET_VALUES)
    text = yaml.safe_dump_all(manifests)
    assert "AWS_ACCESS_KEY_ID" not in text
    assert "AWS_SECRET_ACCESS_KEY" not in text


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_service_pdb_and_migration_job_belong_to_the_deployment(
    name: str, service: Service
) -> None:
    manifests = render(name)
    deployment = of_kind(manifests, "Deployment")[service.name]
    labels = pod_labels(deployment)

    svc = of_kind(manifests, "Service")[service.name]
    assert selects(svc["spec"]["selector"], labels)
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]

    pdb = of_kind(manifests, "PodDisruptionBudget")[service.name]
    assert selects(pdb["spec"]["selector"]["matchLabels"], labels)

    job = of_kind(manifests, "Job")[f"{service.name}-migrate"]
    job_container = container(job)
    assert job_container["args"] == ["python", "-m", service.package, "migrate"]
    assert job_container["image"] == container(deployment)["image"]
    assert job_container["envFrom"] == container(deployment)["envFrom"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")
    assert job_container["securityContext"]["readOnlyRootFilesystem"] is True
    # The migration's pods are not the service's: no Service, PDB or rollout picks them.
    assert not selects(deployment["spec"]["selector"]["matchLabels"], pod_labels(job))
    assert not selects(svc["spec"]["selector"], pod_labels(job))


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_sender_and_inbound_autoscale_within_the_topic_partitions(name: str) -> None:
    manifests = render(name)
    autoscalers = of_kind(manifests, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {"sender", "inbound"}
    deployments = of_kind(manifests, "Deployment")
    partitions = min(
        t["spec"]["partitions"]
        for t in of_kind(manifests, "KafkaTopic").values()
        if t["spec"]["topicName"] in ALL_TOPICS
    )
    for name_, hpa in autoscalers.items():
        target = hpa["spec"]["scaleTargetRef"]
        assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name_}
        assert target["name"] in deployments
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_sender_gets_aws_credentials_from_its_irsa_service_account(name: str) -> None:
    manifests = render(name)
    account = of_kind(manifests, "ServiceAccount")["sender"]
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role.startswith("arn:aws:iam::")
    sender = of_kind(manifests, "Deployment")["sender"]
    assert sender["spec"]["template"]["spec"]["serviceAccountName"] == "sender"
    env = config_env(manifests, sender)
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"]
    assert "AWS_ENDPOINT_URL_SNS" not in env, "real SNS in every overlay"


def test_prod_publishes_only_the_sns_endpoint_of_inbound_over_https() -> None:
    manifests = render("prod")
    (ingress,) = of_kind(manifests, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/sns", "Exact")
    backend = path["backend"]["service"]
    assert backend["name"] == "inbound"
    ports = of_kind(manifests, "Service")["inbound"]["spec"]["ports"]
    assert backend["port"]["name"] in {p["name"] for p in ports}


# ---------------------------------------------------------------- overlays and settings


@pytest.mark.parametrize(
    ("overlay", "environment", "replicas", "namespace"),
    [("dev", "dev", 1, "reminders-dev"), ("prod", "prod", 3, "reminders")],
)
def test_overlay_sets_environment_replicas_and_namespace(
    overlay: str, environment: str, replicas: int, namespace: str
) -> None:
    manifests = render(overlay)
    assert {m["metadata"].get("namespace") for m in manifests} == {namespace}
    for deployment in of_kind(manifests, "Deployment").values():
        assert deployment["spec"]["replicas"] == replicas
        assert config_env(manifests, deployment)["ENVIRONMENT"] == environment
        image = container(deployment)["image"]
        assert ":" in image
        assert not image.endswith(":latest")


def test_dev_is_smaller_than_prod() -> None:
    def memory_mi(manifests: tuple[Manifest, ...], service: str) -> int:
        deployment = of_kind(manifests, "Deployment")[service]
        return int(container(deployment)["resources"]["limits"]["memory"].removesuffix("Mi"))

    for service in SERVICES:
        assert memory_mi(render("dev"), service.name) < memory_mi(render("prod"), service.name)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=SERVICE_IDS)
def test_service_accepts_the_overlays_settings(
    overlay: str, service: Service, settings_env: SettingsLoader
) -> None:
    """Every variable is one the service reads, and the service starts with them (in prod
    that means every setting it requires outside dev is set)."""
    manifests = render(overlay)
    for workload in (
        of_kind(manifests, "Deployment")[service.name],
        of_kind(manifests, "Job")[f"{service.name}-migrate"],
    ):
        env = config_env(manifests, workload)
        unknown = set(env) - service.env_names() - AWS_ENV
        assert not unknown, f"{sorted(unknown)} are not settings of {service.package}"
        settings: Any = settings_env.load(service, env)
        assert settings.environment == overlay
        assert settings.http_host == "0.0.0.0"  # noqa: S104 (inside a container, on purpose)
        assert settings.kafka_create_topics is False


def test_prod_without_the_clinics_settings_is_refused(settings_env: SettingsLoader) -> None:
    """The base alone lacks the clinic's long code: with ENVIRONMENT=prod the sender stops."""
    manifests = render("base")
    sender = next(s for s in SERVICES if s.name == "sender")
    env = config_env(manifests, of_kind(manifests, "Deployment")["sender"])
    assert env["ENVIRONMENT"] == "prod"
    with pytest.raises(ValueError, match="SMS_ORIGINATION_NUMBER"):
        settings_env.load(sender, env)
