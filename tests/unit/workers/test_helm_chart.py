"""The helm chart as Helm itself renders it: helm-python-sdk bundles Helm's Go engine, so these
are the manifests `helm template` would print, not a reading of values.yaml.

What must hold for a rollout to work: `helm lint` is clean; the chart's values.schema.json refuses
a misspelled override; every manifest passes Kubernetes' strict schemas (a misspelled field is
refused, where the API server would drop it); each enabled worker gets a Deployment running its
`liveops` command with probes on the metrics port; and the environment a pod is given is one
that FleetSettings accepts (so no worker stops at start). On a fresh cluster a setup Job (a Helm
hook, before any worker starts) creates the MySQL schema and the Kafka topics; a node drain
evicts at most one pod of a worker at a time (a PodDisruptionBudget per worker).
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

from workers.settings import ENV_PREFIX, FleetSettings, load_settings

CHART = Path(__file__).resolve().parents[3] / "helm" / "liveops-fleet"
RELEASE = "liveops"
#: The newest Kubernetes whose schemas the pinned kubernetes-validate ships.
KUBERNETES_VERSION = "1.37.0"
LINT_WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error

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


def deployments_by_worker(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {
        deployment["metadata"]["labels"]["app.kubernetes.io/component"]: deployment
        for deployment in of_kind(manifests, "Deployment")
    }


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
        pdb["metadata"]["labels"]["app.kubernetes.io/component"]: pdb
        for pdb in of_kind(manifests, "PodDisruptionBudget")
    }


#: Values for the Secret's keys, which the chart only names: valid enough for FleetSettings.
SECRET_STAND_INS = {
    "LIVEOPS_REDIS__URL": "redis://:stand-in@redis-master.data.svc:6379/0",
    "LIVEOPS_MYSQL__DSN": "mysql://liveops:stand-in@mysql-primary.data.svc:3306/liveops",
}


def secret_stand_in(name: str) -> str:
    return SECRET_STAND_INS.get(name, "stand-in")


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


def test_helm_lint_is_clean_with_default_values_and_every_worker() -> None:
    for override in (None, every_worker_enabled()):
        report = helm.lint(CHART, override, strict=True, kube_version=f"v{KUBERNETES_VERSION}")
        assert report["errors"] == []
        # Info findings ("icon is recommended") are allowed; warnings and errors are not.
        assert [m for m in report["messages"] if m["severity"] >= LINT_WARNING] == []


def test_every_manifest_passes_the_strict_kubernetes_schemas(
    chart_case: tuple[dict[str, Any], list[Manifest]],
) -> None:
    _, manifests = chart_case
    assert {manifest["kind"] for manifest in manifests} == {
        "ConfigMap",
        "Deployment",
        "Job",
        "PodDisruptionBudget",
    }
    for manifest in manifests:
        # Raises kubernetes_validate.ValidationError naming the field and the manifest.
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_schemas_refuse_a_misspelled_field() -> None:
    """The check above can fail: a typo in a probe setting is caught before any cluster."""
    manifests = render({"workerDefaults": {"livenessProbe": {"initalDelaySeconds": 5}}})
    with pytest.raises(kubernetes_validate.ValidationError, match="initalDelaySeconds"):
        kubernetes_validate.validate(
            of_kind(manifests, "Deployment")[0], KUBERNETES_VERSION, strict=True
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
    for deployment in of_kind(manifests, "Deployment"):
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
    for deployment in of_kind(manifests, "Deployment"):
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
    for deployment in of_kind(manifests, "Deployment"):
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


def test_a_changed_setting_rolls_the_pods() -> None:
    """The pod template carries a checksum of the ConfigMap: a new setting is a new rollout."""

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
    # Given every worker on; When rendered; Then each pod (workers and the setup Job) and each
    # of its containers, init containers included, meets the restricted standard.
    manifests = render(every_worker_enabled())
    workloads = [*of_kind(manifests, "Deployment"), setup_job(manifests)]
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
    # Five workers, then the Job's migrate and topics containers: none was skipped.
    assert checked == len(default_values()["workers"]) + 2


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
        # And not the setup Job's pod
        assert not pdb["spec"]["selector"]["matchLabels"].items() <= job_pod_labels.items()


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
    # Then there are no budgets, and still every Deployment
    assert of_kind(manifests, "PodDisruptionBudget") == []
    assert set(deployments_by_worker(manifests)) == set(default_values()["workers"])
    # And one worker can turn its own back on
    rewards_only = {
        **override,
        "workers": {"rewards": {"enabled": True, "podDisruptionBudget": {"enabled": True}}},
    }
    assert set(pdbs_by_worker(render(rewards_only))) == {"rewards"}
