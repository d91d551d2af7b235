"""The helm chart as Helm itself renders it: helm-python-sdk bundles Helm's Go engine, so these
are the manifests `helm template` would print, not a reading of values.yaml.

What must hold for a rollout to work: `helm lint` is clean; the chart's values.schema.json refuses
a misspelled override; every manifest passes Kubernetes' strict schemas (a misspelled field is
refused, where the API server would drop it); each enabled worker gets a Deployment running its
`liveops` command with probes on the metrics port; and the environment a pod is given is one
that FleetSettings accepts (so no worker stops at start). On a fresh cluster a setup Job (a Helm
hook, before any worker starts) creates the MySQL schema and the Kafka topics; a node drain
evicts at most one pod of a worker at a time (a PodDisruptionBudget per worker). The HTTP gateway
(`liveops gateway`) runs beside the workers: a Deployment listening on all interfaces, probed and
scraped on its one port, a Service that selects only its pods, and its own disruption budget.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from producers.gateway.auth import TokenVerifier
from producers.settings import GatewaySettings
from workers.settings import ENV_PREFIX, FleetSettings, load_settings

CHART = Path(__file__).resolve().parents[3] / "helm" / "liveops-fleet"
RELEASE = "liveops"
#: The newest Kubernetes whose schemas the pinned kubernetes-validate ships.
KUBERNETES_VERSION = "1.37.0"
LINT_WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error
#: The component label of the gateway's Deployment, pods, Service and budget.
GATEWAY = "gateway"

Manifest = dict[str, Any]


def default_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def every_worker_enabled() -> dict[str, Any]:
    """The override that turns on every worker the chart knows, built ones or not."""
    return {"workers": {name: {"enabled": True} for name in default_values()["workers"]}}


def render(values: dict[str, Any] | None = None) -> list[Manifest]:
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values, name=RELEASE, namespace="liveops")
    return [
        manifest
        for text in rendered.values()
        for manifest in yaml.safe_load_all(text)
        if manifest is not None
    ]


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def component(manifest: Manifest) -> str:
    label: str = manifest["metadata"]["labels"]["app.kubernetes.io/component"]
    return label


def deployments_by_worker(manifests: list[Manifest]) -> dict[str, Manifest]:
    """The workers' Deployments by worker name (the gateway's is not a worker: see gateway_of)."""
    return {
        component(deployment): deployment
        for deployment in of_kind(manifests, "Deployment")
        if component(deployment) != GATEWAY
    }


def gateway_of(manifests: list[Manifest]) -> dict[str, Manifest]:
    """The gateway's manifests by kind (Deployment, Service, PodDisruptionBudget); {} when off."""
    parts = [m for m in manifests if m["kind"] != "ConfigMap" and component(m) == GATEWAY]
    by_kind = {manifest["kind"]: manifest for manifest in parts}
    assert len(by_kind) == len(parts), "two gateway manifests of one kind"
    return by_kind


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether a matchLabels (or a Service's) selector matches a pod with these labels."""
    return selector.items() <= labels.items()


def worker_container(deployment: Manifest) -> Manifest:
    """A worker Deployment's one container (the setup Job has two: see pod_containers)."""
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


def pod_containers(workload: Manifest) -> list[Manifest]:
    """Every container of a Deployment's or a Job's pod, initContainers first."""
    pod = workload["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def setup_job(manifests: list[Manifest]) -> Manifest:
    (job,) = of_kind(manifests, "Job")
    return job


def pdbs_by_worker(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {
        component(pdb): pdb
        for pdb in of_kind(manifests, "PodDisruptionBudget")
        if component(pdb) != GATEWAY
    }


#: Values for the Secret's keys, which the chart only names: valid enough for FleetSettings.
SECRET_STAND_INS = {
    "LIVEOPS_REDIS__URL": "redis://:stand-in@redis-master.data.svc:6379/0",
    "LIVEOPS_MYSQL__DSN": "mysql://liveops:stand-in@mysql-primary.data.svc:3306/liveops",
    # HS256 keys must be at least 32 bytes (producers/settings.py).
    "LIVEOPS_GATEWAY__JWT_SECRET": "stand-in-hs256-key-of-at-least-32-bytes",
}


def secret_stand_in(name: str) -> str:
    return SECRET_STAND_INS.get(name, "stand-in")


def pod_environment(container: Manifest, config_map: Manifest) -> dict[str, str]:
    """What the container's process sees: the ConfigMap (envFrom), then its own env entries
    (which win), each Secret key given its stand-in value."""
    assert container["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
    environment = dict(config_map["data"])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            environment[variable["name"]] = secret_stand_in(variable["name"])
    return environment


def secret_refs(container: Manifest) -> dict[str, Manifest]:
    """A container's env entries read from a Secret: variable -> its secretKeyRef."""
    return {
        v["name"]: v["valueFrom"]["secretKeyRef"]
        for v in container.get("env", [])
        if "valueFrom" in v
    }


def settings_from(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FleetSettings:
    """load_settings() given exactly this environment (no LIVEOPS_* of the test process)."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
            patch.delenv(name)
        for name, value in environment.items():
            patch.setenv(name, value)
        return load_settings()


@pytest.fixture(scope="module", params=["default", "every-worker"])
def chart_case(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, Any], list[Manifest]]]:
    """(override values, rendered manifests): the chart as shipped, and with every worker on."""
    override: dict[str, Any] = {} if request.param == "default" else every_worker_enabled()
    yield override, render(override or None)


def assert_lint_clean(override: dict[str, Any] | None) -> None:
    """`helm lint --strict` of the chart with `override` finds no error and no warning (info
    findings, "icon is recommended", are allowed)."""
    report = helm.lint(CHART, override, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= LINT_WARNING] == []


def test_helm_lint_is_clean_with_default_values_and_every_worker() -> None:
    for override in (None, every_worker_enabled()):
        assert_lint_clean(override)


def test_every_manifest_passes_the_strict_kubernetes_schemas(
    chart_case: tuple[dict[str, Any], list[Manifest]],
) -> None:
    _, manifests = chart_case
    assert {manifest["kind"] for manifest in manifests} == {
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
        "Service",
    }
    for manifest in manifests:
        # Raises kubernetes_validate.ValidationError naming the field and the manifest.
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_schemas_refuse_a_misspelled_field() -> None:
    """The check above can fail: a typo in a probe setting is caught before any cluster."""
    manifests = render({"workerDefaults": {"livenessProbe": {"initalDelaySeconds": 5}}})
    with pytest.raises(kubernetes_validate.ValidationError, match="initalDelaySeconds"):
        kubernetes_validate.validate(
            deployments_by_worker(manifests)["rewards"], KUBERNETES_VERSION, strict=True
        )


def test_each_enabled_worker_runs_its_liveops_command(
    chart_case: tuple[dict[str, Any], list[Manifest]],
) -> None:
    override, manifests = chart_case
    values = default_values()
    workers: dict[str, dict[str, Any]] = values["workers"]
    enabled = {
        name
        for name, worker in workers.items()
        if override.get("workers", {}).get(name, {}).get("enabled", worker.get("enabled"))
    }
    deployments = deployments_by_worker(manifests)
    assert set(deployments) == enabled
    for name, deployment in deployments.items():
        container = worker_container(deployment)
        expected_args = workers[name].get("args", ["worker", name])
        assert [*container["command"], *container["args"]] == ["liveops", *expected_args]
        assert deployment["spec"]["replicas"] == workers[name].get(
            "replicas", values["workerDefaults"]["replicas"]
        )
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # No two Deployments select the same pods (they would scale each other's replicas away).
    selectors = [
        str(sorted(d["spec"]["selector"]["matchLabels"].items())) for d in deployments.values()
    ]
    assert len(set(selectors)) == len(deployments)
    # The commands, spelled out for the workers on by default.
    assert worker_container(deployments["rewards"])["args"] == ["worker", "rewards"]
    assert worker_container(deployments["leaderboards"])["args"] == ["worker", "leaderboards"]
    assert worker_container(deployments["velocity"])["args"] == ["stream", "velocity"]
    assert worker_container(deployments["velocity"])["workingDir"] == "/tmp"  # noqa: S108 - an emptyDir
    if "iap" in deployments:
        grace_s = deployments["iap"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace_s == workers["iap"]["terminationGracePeriodSeconds"]


def test_probes_and_scraping_use_the_metrics_port_the_worker_listens_on(
    chart_case: tuple[dict[str, Any], list[Manifest]],
) -> None:
    _, manifests = chart_case
    port = default_values()["metrics"]["port"]
    (config_map,) = of_kind(manifests, "ConfigMap")
    assert config_map["data"]["LIVEOPS_METRICS_PORT"] == str(port)
    for deployment in deployments_by_worker(manifests).values():
        container = worker_container(deployment)
        assert container["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"workers": {"rewards": {"replica": 5}}}, "'replica' not allowed"),
        ({"worker": {"rewards": {"enabled": True}}}, "'worker' not allowed"),
        ({"workers": {"Rewards": {"enabled": True}}}, "invalid propertyName 'Rewards'"),
        ({"config": {"kafka_bootstrap_servers": "x:1"}}, "'kafka_bootstrap_servers'"),
        ({"workers": {"rewards": {"replicas": "3"}}}, "/workers/rewards/replicas"),
        ({"setup": {"backofLimit": 5}}, "'backofLimit' not allowed"),
        ({"setup": {"activeDeadlineSeconds": 0}}, "/setup/activeDeadlineSeconds"),
        (
            {"workerDefaults": {"podDisruptionBudget": {"maxUnavailble": 1}}},
            "'maxUnavailble' not allowed",
        ),
        (
            {"workers": {"rewards": {"podDisruptionBudget": {"enable": False}}}},
            "'enable' not allowed",
        ),
        (
            {"workers": {"rewards": {"podDisruptionBudget": {"maxUnavailable": "50"}}}},
            "'50' does not match pattern",
        ),
        ({"gateway": {"replica": 3}}, "'replica' not allowed"),
        ({"gateway": {"port": "8080"}}, "/gateway/port"),
        ({"gateway": {"port": 0}}, "/gateway/port"),
        ({"gateway": {"service": {"prot": 80}}}, "'prot' not allowed"),
        ({"gateway": {"service": {"type": "Ingress"}}}, "/gateway/service/type"),
        ({"gateway": {"podDisruptionBudget": {"maxUnavailble": 1}}}, "'maxUnavailble' not allowed"),
        ({"gateways": {"enabled": False}}, "'gateways' not allowed"),
        ({"secrets": {"gatewayEnv": {"jwt_secret": "key"}}}, "invalid propertyName 'jwt_secret'"),
    ],
)
def test_a_misspelled_override_is_refused_by_the_values_schema(
    override: dict[str, Any], named: str
) -> None:
    """values.schema.json: Helm refuses unknown or mistyped values at install (and here, at
    render) instead of dropping them; the message names the offending key."""
    with pytest.raises(helm.HelmValuesError, match=re.escape(named)):
        render(override)


def test_the_metrics_port_is_set_in_one_place() -> None:
    manifests = render({"metrics": {"port": 9200}})
    (config_map,) = of_kind(manifests, "ConfigMap")
    assert config_map["data"]["LIVEOPS_METRICS_PORT"] == "9200"
    for deployment in deployments_by_worker(manifests).values():
        assert worker_container(deployment)["ports"][0]["containerPort"] == 9200
    # Set among the settings too, it would be a second key of the ConfigMap: refused.
    with pytest.raises(helm.HelmRenderError, match=r"set metrics\.port instead"):
        render({"config": {"LIVEOPS_METRICS_PORT": "9000"}})


def test_a_setting_in_both_the_config_and_the_secrets_is_refused() -> None:
    # In both, the pod's env (from the Secret) would silently override the ConfigMap's value.
    with pytest.raises(helm.HelmRenderError, match=r"config\.LIVEOPS_REDIS__URL is also in"):
        render({"config": {"LIVEOPS_REDIS__URL": "redis://plain:6379/0"}})


def test_a_pods_environment_is_accepted_by_fleet_settings(
    chart_case: tuple[dict[str, Any], list[Manifest]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every variable the chart hands a worker (the ConfigMap, plus each Secret key with a
    stand-in value) is a setting of workers/settings.py with a valid value."""
    _, manifests = chart_case
    (config_map,) = of_kind(manifests, "ConfigMap")
    secret_name = default_values()["secrets"]["existingSecret"]
    for deployment in deployments_by_worker(manifests).values():
        container = worker_container(deployment)
        assert container["envFrom"] == [{"configMapRef": {"name": config_map["metadata"]["name"]}}]
        environment = dict(config_map["data"])
        for variable in container["env"]:
            assert variable["valueFrom"]["secretKeyRef"]["name"] == secret_name
            environment[variable["name"]] = secret_stand_in(variable["name"])
        settings = settings_from(environment, monkeypatch)
        assert settings.metrics_port == int(config_map["data"]["LIVEOPS_METRICS_PORT"])
        assert settings.kafka.security_protocol == "SASL_SSL"
        assert settings.kafka.sasl_username == "stand-in"
        assert settings.kafka.enable_idempotence is True
        assert settings.kafka.replication_factor == 3
        assert settings.redis.url.get_secret_value() == SECRET_STAND_INS["LIVEOPS_REDIS__URL"]
        # A worker never holds the key that signs player tokens (secrets.gatewayEnv).
        assert settings.gateway.jwt_secret is None


def test_a_changed_setting_rolls_the_pods() -> None:
    """The pod template carries a checksum of the ConfigMap: a new setting is a new rollout
    (the gateway's Deployment included)."""

    def checksums(values: dict[str, Any] | None) -> set[str]:
        return {
            deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for deployment in of_kind(render(values), "Deployment")
        }

    before = checksums(None)
    after = checksums({"config": {"LIVEOPS_LOG_LEVEL": "debug"}})
    assert len(before) == len(after) == 1
    assert before != after


def test_a_new_secrets_revision_rolls_the_pods() -> None:
    """The chart never reads the Secret: a rotation rolls the pods when its revision is bumped."""

    def revisions(values: dict[str, Any] | None) -> set[str]:
        return {
            deployment["spec"]["template"]["metadata"]["annotations"]["liveops/secrets-revision"]
            for deployment in of_kind(render(values), "Deployment")
        }

    assert revisions(None) == {""}
    assert revisions({"secrets": {"revision": "2026-12-07"}}) == {"2026-12-07"}


def test_pods_meet_the_restricted_pod_security_standard() -> None:
    # Given every worker on; When rendered; Then each pod (workers, the gateway and the setup
    # Job) and each of its containers, init containers included, meets the restricted standard.
    manifests = render(every_worker_enabled())
    workloads = [*of_kind(manifests, "Deployment"), setup_job(manifests)]
    assert gateway_of(manifests)["Deployment"] in workloads
    checked = 0
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod_containers(workload):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert context["readOnlyRootFilesystem"] is True
            checked += 1
    # Five workers, the gateway, then the Job's migrate and topics containers: none was skipped.
    assert checked == len(default_values()["workers"]) + 1 + 2


def test_the_setup_job_is_a_hook_that_migrates_then_applies_the_topics(
    chart_case: tuple[dict[str, Any], list[Manifest]],
) -> None:
    """A fresh cluster has no schema and no topics: the Job creates both before any worker
    starts, on install and again on every upgrade; a failed Job is kept for its logs."""
    # Given the chart as shipped (and with every worker on)
    _, manifests = chart_case
    values = default_values()
    # When the setup Job is rendered
    job = setup_job(manifests)
    # Then it is a pre-install and pre-upgrade hook, deleted only once it succeeded
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-weight"] == "0"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "setup"
    assert job["metadata"]["labels"]["app.kubernetes.io/part-of"] == "liveops-fleet"
    assert job["spec"]["backoffLimit"] == values["setup"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == values["setup"]["activeDeadlineSeconds"]
    # And its pod migrates first (an initContainer), then applies the topics
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (migrate,) = pod["initContainers"]
    (topics,) = pod["containers"]
    assert (migrate["name"], [*migrate["command"], *migrate["args"]]) == (
        "migrate",
        ["liveops", "migrate"],
    )
    assert (topics["name"], [*topics["command"], *topics["args"]]) == (
        "topics",
        ["liveops", "topics", "apply"],
    )
    # And with the workers' image, pull policy and a writable /tmp on a read-only root
    worker = worker_container(deployments_by_worker(manifests)["rewards"])
    assert pod["securityContext"] == values["podSecurityContext"]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    for container in (migrate, topics):
        assert container["image"] == worker["image"]
        assert container["imagePullPolicy"] == worker["imagePullPolicy"]
        assert container["securityContext"] == values["securityContext"]
        assert container["resources"] == values["setup"]["resources"]
        assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108


def test_the_setup_job_gets_every_setting_inline_and_fleet_settings_accepts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pre-install hook runs before the chart's ConfigMap exists: an envFrom would leave the
    pod stuck in CreateContainerConfigError, so each setting is inline."""
    # Given the shipped values
    values = default_values()
    secret_name = values["secrets"]["existingSecret"]
    # When the setup Job is rendered
    job = setup_job(render())
    # Then each container has every config entry verbatim and every secret from the Secret
    for container in pod_containers(job):
        assert "envFrom" not in container
        inline = {v["name"]: v["value"] for v in container["env"] if "value" in v}
        assert inline == {name: str(value) for name, value in values["config"].items()}
        from_secret = {
            v["name"]: v["valueFrom"]["secretKeyRef"] for v in container["env"] if "valueFrom" in v
        }
        assert from_secret == {
            variable: {"name": secret_name, "key": key}
            for variable, key in values["secrets"]["env"].items()
        }
        assert len(container["env"]) == len(inline) + len(from_secret)
        # And FleetSettings accepts that environment (stand-ins for the Secret's values)
        environment = {**inline, **{name: secret_stand_in(name) for name in from_secret}}
        settings = settings_from(environment, monkeypatch)
        assert settings.mysql.dsn.get_secret_value() == SECRET_STAND_INS["LIVEOPS_MYSQL__DSN"]
        assert (
            settings.kafka.bootstrap_servers == values["config"]["LIVEOPS_KAFKA__BOOTSTRAP_SERVERS"]
        )
        assert settings.kafka.replication_factor == 3


def test_the_setup_job_can_be_turned_off() -> None:
    # Given setup.enabled false (the schema and topics are managed elsewhere)
    # When the chart is rendered
    manifests = render({"setup": {"enabled": False}})
    # Then there is no Job, and the workers are still there
    assert of_kind(manifests, "Job") == []
    assert set(deployments_by_worker(manifests)) == {"rewards", "leaderboards", "velocity"}


def test_a_worker_named_setup_is_refused() -> None:
    # Given a worker named like the setup Job's component label
    # When the chart is rendered
    # Then rendering stops: that worker's Deployment and PDB would select the Job's pod
    with pytest.raises(helm.HelmRenderError, match=r"workers\.setup: the name is taken"):
        render({"workers": {"setup": {"enabled": True}}})


def test_each_enabled_worker_has_a_disruption_budget_for_exactly_its_pods(
    chart_case: tuple[dict[str, Any], list[Manifest]],
) -> None:
    """Each eviction is a consumer-group rebalance: a drain takes one pod of a worker at a time."""
    # Given the chart as shipped (and with every worker on)
    _, manifests = chart_case
    # When rendered
    deployments = deployments_by_worker(manifests)
    pdbs = pdbs_by_worker(manifests)
    # Then each enabled worker, and only those, has a budget named like its Deployment
    assert set(pdbs) == set(deployments)
    job_pod_labels = setup_job(manifests)["spec"]["template"]["metadata"]["labels"]
    gateway_pod_labels = pod_labels(gateway_of(manifests)["Deployment"])
    for name, pdb in pdbs.items():
        deployment = deployments[name]
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["metadata"]["name"] == deployment["metadata"]["name"]
        # And it selects exactly that Deployment's pods, one at a time
        assert pdb["spec"]["selector"] == {
            "matchLabels": deployment["spec"]["selector"]["matchLabels"]
        }
        assert pdb["spec"]["maxUnavailable"] == 1
        assert "minAvailable" not in pdb["spec"]
        # And not the setup Job's pod, nor the gateway's
        assert not selects(pdb["spec"]["selector"]["matchLabels"], job_pod_labels)
        assert not selects(pdb["spec"]["selector"]["matchLabels"], gateway_pod_labels)


def test_a_workers_own_disruption_budget_overrides_only_that_worker() -> None:
    # Given rewards allowed two pods out at a time
    override = {"workers": {"rewards": {"podDisruptionBudget": {"maxUnavailable": 2}}}}
    # When rendered
    pdbs = pdbs_by_worker(render(override))
    # Then rewards' budget changes and the others keep the default
    assert {name: pdb["spec"]["maxUnavailable"] for name, pdb in pdbs.items()} == {
        "rewards": 2,
        "leaderboards": 1,
        "velocity": 1,
    }
    # And a percentage is passed through as one
    pdbs = pdbs_by_worker(
        render({"workers": {"velocity": {"podDisruptionBudget": {"maxUnavailable": "50%"}}}})
    )
    assert pdbs["velocity"]["spec"]["maxUnavailable"] == "50%"


def test_disruption_budgets_can_be_turned_off() -> None:
    # Given budgets disabled in the worker defaults
    override: dict[str, Any] = {"workerDefaults": {"podDisruptionBudget": {"enabled": False}}}
    # When rendered, with every worker on
    manifests = render({**every_worker_enabled(), **override})
    # Then no worker has a budget, and still every Deployment
    assert pdbs_by_worker(manifests) == {}
    assert set(deployments_by_worker(manifests)) == set(default_values()["workers"])
    # And the gateway's budget is its own (gateway.podDisruptionBudget), still there
    assert [component(pdb) for pdb in of_kind(manifests, "PodDisruptionBudget")] == [GATEWAY]
    # And one worker can turn its own back on
    rewards_only = {
        **override,
        "workers": {"rewards": {"enabled": True, "podDisruptionBudget": {"enabled": True}}},
    }
    assert set(pdbs_by_worker(render(rewards_only))) == {"rewards"}


def test_the_gateway_runs_liveops_gateway_on_all_interfaces_and_its_port(
    chart_case: tuple[dict[str, Any], list[Manifest]],
) -> None:
    """`liveops gateway` defaults to 127.0.0.1, which only the pod itself can reach: in a pod it
    must listen on 0.0.0.0, on the port its probes, scrape annotations and Service name."""
    # Given the chart as shipped (and with every worker on)
    _, manifests = chart_case
    values = default_values()
    port = values["gateway"]["port"]
    # When the gateway's Deployment is rendered
    deployment = gateway_of(manifests)["Deployment"]
    container = worker_container(deployment)
    # Then it is named and labelled as the gateway and runs `liveops gateway`
    assert deployment["metadata"]["name"] == f"{RELEASE}-liveops-fleet-gateway"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/part-of"] == "liveops-fleet"
    assert deployment["spec"]["replicas"] == values["gateway"]["replicas"] == 2
    assert (container["name"], [*container["command"], *container["args"]]) == (
        "gateway",
        ["liveops", "gateway"],
    )
    # And it listens on all interfaces, on gateway.port, named http
    inline = {v["name"]: v["value"] for v in container["env"] if "value" in v}
    assert inline == {"LIVEOPS_GATEWAY__HOST": "0.0.0.0", "LIVEOPS_GATEWAY__PORT": str(port)}  # noqa: S104
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    # And it is probed and scraped on that port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    # And it rolls with the settings and the secrets like the workers do
    rewards = deployments_by_worker(manifests)["rewards"]
    worker_annotations = rewards["spec"]["template"]["metadata"]["annotations"]
    for key in ("checksum/config", "liveops/secrets-revision"):
        assert annotations[key] == worker_annotations[key]
    # And it runs from the workers' image, pull policy, security contexts and writable /tmp
    worker = worker_container(rewards)
    pod = deployment["spec"]["template"]["spec"]
    assert container["image"] == worker["image"]
    assert container["imagePullPolicy"] == worker["imagePullPolicy"]
    assert container["securityContext"] == values["securityContext"]
    assert pod["securityContext"] == values["podSecurityContext"]
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    assert container["resources"] == values["gateway"]["resources"]
    # And on SIGTERM it has time to leave the Service, then to finish requests and flush
    pre_stop_s = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop_s == values["gateway"]["preStopSleepSeconds"] > 0
    shutdown_grace_s = GatewaySettings().shutdown_grace_s
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + shutdown_grace_s


def test_the_gateway_service_selects_exactly_the_gateway_pods(
    chart_case: tuple[dict[str, Any], list[Manifest]],
) -> None:
    # Given the chart as shipped (and with every worker on)
    _, manifests = chart_case
    values = default_values()
    # When the gateway's Service and budget are rendered
    gateway = gateway_of(manifests)
    deployment, service, pdb = (
        gateway["Deployment"],
        gateway["Service"],
        gateway["PodDisruptionBudget"],
    )
    # Then the Service sends its port to the pods' http port
    assert service["metadata"]["name"] == deployment["metadata"]["name"]
    assert service["spec"]["type"] == values["gateway"]["service"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {
            "name": "http",
            "port": values["gateway"]["service"]["port"],
            "targetPort": "http",
            "protocol": "TCP",
        }
    ]
    # And it selects with the Deployment's own selector, which its pods carry
    selector = service["spec"]["selector"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selects(selector, pod_labels(deployment))
    # And no worker pod nor the setup Job's pod
    others = [*deployments_by_worker(manifests).values(), setup_job(manifests)]
    assert len(others) >= 4
    for workload in others:
        assert not selects(selector, pod_labels(workload)), workload["metadata"]["name"]
    # And the gateway's budget covers exactly those pods, one out at a time
    assert pdb["metadata"]["name"] == deployment["metadata"]["name"]
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}


def test_the_gateway_pods_environment_is_accepted_by_fleet_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gateway reads the same FleetSettings as the workers: its ConfigMap, its host and
    port, and the Secret's keys (stand-ins) must load, and give it the JWT key it needs to
    start (it exits at start without one)."""
    for override, port in ((None, 8080), ({"gateway": {"port": 9000}}, 9000)):
        # Given the shipped values (and another gateway.port)
        manifests = render(override)
        (config_map,) = of_kind(manifests, "ConfigMap")
        container = worker_container(gateway_of(manifests)["Deployment"])
        # When FleetSettings loads the gateway pod's environment
        settings = settings_from(pod_environment(container, config_map), monkeypatch)
        # Then it listens on all interfaces on the configured port
        assert settings.gateway.host == "0.0.0.0"  # noqa: S104
        assert settings.gateway.port == port
        assert container["ports"][0]["containerPort"] == port
        # And it has the Redis and Kafka settings the publisher and idempotency store need
        assert settings.redis.url.get_secret_value() == SECRET_STAND_INS["LIVEOPS_REDIS__URL"]
        assert settings.kafka.security_protocol == "SASL_SSL"
        assert settings.kafka.sasl_password is not None
        # And its JWT key comes from the Secret and is one the gateway starts with
        assert settings.gateway.jwt_algorithm == "HS256"
        assert settings.gateway.jwt_secret is not None
        assert (
            settings.gateway.jwt_secret.get_secret_value()
            == SECRET_STAND_INS["LIVEOPS_GATEWAY__JWT_SECRET"]
        )
        TokenVerifier(settings.gateway)  # raises GatewayConfigError without a usable key


def test_only_the_gateway_gets_its_secrets() -> None:
    # Given the shipped values
    values = default_values()
    secret_name = values["secrets"]["existingSecret"]
    # When rendered, and each container's Secret references are read
    manifests = render()
    gateway = secret_refs(worker_container(gateway_of(manifests)["Deployment"]))
    # Then the gateway gets the shared secrets and its own, all from the existing Secret
    expected = {**values["secrets"]["env"], **values["secrets"]["gatewayEnv"]}
    assert gateway == {name: {"name": secret_name, "key": key} for name, key in expected.items()}
    assert "LIVEOPS_GATEWAY__JWT_SECRET" in gateway
    # And no worker or setup container gets the key that signs player tokens
    containers = [
        *(worker_container(d) for d in deployments_by_worker(manifests).values()),
        *pod_containers(setup_job(manifests)),
    ]
    for container in containers:
        assert set(secret_refs(container)) == set(values["secrets"]["env"]), container["name"]


def test_the_gateway_can_be_turned_off() -> None:
    # Given gateway.enabled false, and no JWT key (nothing needs one then)
    override = {
        "gateway": {"enabled": False},
        "secrets": {"gatewayEnv": {"LIVEOPS_GATEWAY__JWT_SECRET": None}},
    }
    # When the chart is rendered
    manifests = render(override)
    # Then there is no gateway Deployment, Service or budget, and the rest is still there
    assert gateway_of(manifests) == {}
    assert of_kind(manifests, "Service") == []
    assert set(deployments_by_worker(manifests)) == {"rewards", "leaderboards", "velocity"}
    assert set(pdbs_by_worker(manifests)) == {"rewards", "leaderboards", "velocity"}
    assert len(of_kind(manifests, "Job")) == 1


def test_the_gateway_port_is_set_in_one_place() -> None:
    # Given the gateway moved to another port
    manifests = render({"gateway": {"port": 9000, "service": {"port": 8443}}})
    # When rendered
    gateway = gateway_of(manifests)
    container = worker_container(gateway["Deployment"])
    # Then the process, the container port and the scrape annotation all follow
    assert {"name": "LIVEOPS_GATEWAY__PORT", "value": "9000"} in container["env"]
    assert container["ports"][0]["containerPort"] == 9000
    annotations = gateway["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9000"
    # And the Service still reaches it by the port's name
    assert gateway["Service"]["spec"]["ports"][0] == {
        "name": "http",
        "port": 8443,
        "targetPort": "http",
        "protocol": "TCP",
    }


def test_a_worker_named_gateway_is_refused() -> None:
    # Given a worker named like the gateway's component label
    # When the chart is rendered
    # Then rendering stops: its Deployment and budget would select the gateway's pods, and the
    # gateway's Service would send players to it
    with pytest.raises(helm.HelmRenderError, match=r"workers\.gateway: the name is taken"):
        render({"workers": {"gateway": {"enabled": True}}})


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            {"config": {"LIVEOPS_GATEWAY__PORT": "9000"}},
            "config.LIVEOPS_GATEWAY__PORT: set gateway.port instead",
        ),
        (
            {"config": {"LIVEOPS_GATEWAY__HOST": "127.0.0.1"}},
            "config.LIVEOPS_GATEWAY__HOST: the chart sets it",
        ),
        (
            {"secrets": {"env": {"LIVEOPS_GATEWAY__PORT": "gateway-port"}}},
            "secrets.env.LIVEOPS_GATEWAY__PORT: set gateway.port instead",
        ),
        (
            {"secrets": {"gatewayEnv": {"LIVEOPS_GATEWAY__JWT_SECRET": None}}},
            "HS256 tokens need LIVEOPS_GATEWAY__JWT_SECRET",
        ),
        (
            {"config": {"LIVEOPS_GATEWAY__JWT_ALGORITHM": "RS256"}},
            "RS256 tokens need LIVEOPS_GATEWAY__JWT_PUBLIC_KEY_PEM",
        ),
        (
            {
                "config": {
                    "LIVEOPS_GATEWAY__JWT_SECRET": "in-plain-sight-in-a-config-map-0123456789"
                }
            },
            "config.LIVEOPS_GATEWAY__JWT_SECRET: a secret does not belong in the ConfigMap",
        ),
        (
            {"secrets": {"env": {"LIVEOPS_GATEWAY__JWT_SECRET": "gateway-jwt-secret"}}},
            "secrets.env.LIVEOPS_GATEWAY__JWT_SECRET: every worker and the setup Job",
        ),
        (
            {
                "config": {"LIVEOPS_GATEWAY__JWT_ISSUER": "https://id.example.com"},
                "secrets": {"gatewayEnv": {"LIVEOPS_GATEWAY__JWT_ISSUER": "issuer"}},
            },
            "config.LIVEOPS_GATEWAY__JWT_ISSUER is also in secrets.gatewayEnv",
        ),
        (
            {"secrets": {"gatewayEnv": {"LIVEOPS_REDIS__URL": "gateway-redis-url"}}},
            "secrets.gatewayEnv.LIVEOPS_REDIS__URL is also in secrets.env",
        ),
    ],
)
def test_a_gateway_that_could_not_start_or_would_leak_its_key_is_refused(
    override: dict[str, Any], named: str
) -> None:
    """Rendering stops when the settings name the gateway's host or port (the pod's own env
    entry would silently win over them), when the gateway lacks the JWT key of its algorithm
    (it exits at start), or when the HS256 key, which signs player tokens, would reach more
    than the gateway pods."""
    with pytest.raises(helm.HelmRenderError, match=re.escape(named)):
        render(override)


def test_an_rs256_gateway_takes_its_public_key_from_the_config() -> None:
    # Given RS256, the public key (not a secret) in config and no HS256 secret
    override = {
        "config": {
            "LIVEOPS_GATEWAY__JWT_ALGORITHM": "RS256",
            "LIVEOPS_GATEWAY__JWT_PUBLIC_KEY_PEM": "-----BEGIN PUBLIC KEY-----\n...",
        },
        "secrets": {"gatewayEnv": {"LIVEOPS_GATEWAY__JWT_SECRET": None}},
    }
    # When rendered
    container = worker_container(gateway_of(render(override))["Deployment"])
    # Then the gateway runs, with no Secret reference for a JWT key
    assert not any(v["name"].startswith("LIVEOPS_GATEWAY__JWT") for v in container["env"])


def test_a_grace_period_not_above_the_gateways_shutdown_is_refused() -> None:
    # The template assumes GatewaySettings' default shutdown grace when config does not set it.
    assert GatewaySettings().shutdown_grace_s == 10.0
    # Given the grace period at the preStop sleep (5 s) plus the shutdown grace (10 s)
    # When rendered, Then refused: SIGKILL would cut requests in flight and the flush
    with pytest.raises(helm.HelmRenderError, match=r"gateway\.terminationGracePeriodSeconds"):
        render({"gateway": {"terminationGracePeriodSeconds": 15}})
    # And likewise when config raises the shutdown grace past the default 30 s
    with pytest.raises(
        helm.HelmRenderError, match=r"LIVEOPS_GATEWAY__SHUTDOWN_GRACE_S \(30\.5 s\)"
    ):
        render({"config": {"LIVEOPS_GATEWAY__SHUTDOWN_GRACE_S": "25.5"}})
    # And one second more renders, without a preStop hook when its sleep is 0
    manifests = render({"gateway": {"terminationGracePeriodSeconds": 11, "preStopSleepSeconds": 0}})
    deployment = gateway_of(manifests)["Deployment"]
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 11
    assert "lifecycle" not in worker_container(deployment)
