"""The chart's PodMonitor (prometheus-operator, monitoring.coreos.com/v1), as Helm renders it.

kube-prometheus-stack's Prometheus ignores the pods' prometheus.io/* annotations by default:
without a PodMonitor it scrapes none of the fleet, and the PrometheusRule (test_helm_alerts.py)
sees no metrics. Off by default. When on: one PodMonitor whose selector, evaluated here as the
API server evaluates a label selector (matchExpressions included), takes the pods of every worker
Deployment and of the gateway, and not the setup Job's. The operator scrapes an endpoint only on
pods with a container port of its name: each selected pod has exactly one such port (scraped
twice, every sum in the alerts would double), the one it serves /metrics on. Each target gets
`component` and `pod`, labels no exported metric carries (Prometheus would rename the metric's).
kubernetes-validate has no schemas for custom resources: the PodMonitor's shape is checked here
against the fields of the prometheus-operator CRD.
"""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from test_helm_alerts import CRD_DURATION, exported, registry
from test_helm_chart import (
    GATEWAY,
    KUBERNETES_VERSION,
    RELEASE,
    Manifest,
    assert_lint_clean,
    component,
    default_values,
    deployments_by_worker,
    every_worker_enabled,
    gateway_of,
    of_kind,
    pod_containers,
    pod_labels,
    render,
    setup_job,
)

# The registry of every metric the code exports, built as test_helm_alerts.py builds it.
__all__ = ["exported", "registry"]

MONITOR = "PodMonitor"
ENABLED = {"podMonitor": {"enabled": True}}
COMPONENT_LABEL = "app.kubernetes.io/component"
#: The fields of the CRD's PodMonitorSpec, PodMetricsEndpoint and RelabelConfig; the API server
#: would drop any other silently.
SPEC_FIELDS = {
    "jobLabel", "podTargetLabels", "podMetricsEndpoints", "selector", "namespaceSelector",
    "sampleLimit", "targetLimit", "scrapeProtocols", "labelLimit", "labelNameLengthLimit",
    "labelValueLengthLimit", "keepDroppedTargets", "attachMetadata", "scrapeClass",
}  # fmt: skip
ENDPOINT_FIELDS = {
    "port", "portNumber", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout",
    "tlsConfig", "bearerTokenSecret", "honorLabels", "honorTimestamps",
    "trackTimestampsStaleness", "basicAuth", "oauth2", "authorization", "metricRelabelings",
    "relabelings", "proxyUrl", "followRedirects", "enableHttp2", "filterRunning",
}  # fmt: skip
RELABEL_FIELDS = {
    "sourceLabels", "separator", "targetLabel", "regex", "modulus", "replacement", "action",
}  # fmt: skip
ACTIONS = [
    "Replace", "Keep", "Drop", "HashMod", "LabelMap", "LabelDrop", "LabelKeep", "Lowercase",
    "Uppercase", "KeepEqual", "DropEqual",
]  # fmt: skip
#: The CRD's relabeling actions, each accepted in both spellings (Replace, replace).
RELABEL_ACTIONS = {spelling for action in ACTIONS for spelling in (action, action.lower())}
SELECTOR_OPERATORS = {"In", "NotIn", "Exists", "DoesNotExist"}
#: A Prometheus label name (the CRD's pattern for sourceLabels).
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def pod_monitor(manifests: list[Manifest]) -> Manifest:
    (monitor,) = of_kind(manifests, MONITOR)
    return monitor


def label_selector_matches(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a Kubernetes LabelSelector (matchLabels AND every matchExpression) matches."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def meta_label(pod_label: str) -> str:
    """The discovery label Prometheus gives a pod label (every invalid character becomes _)."""
    return "__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", pod_label)


def port_numbers(workload: Manifest) -> dict[str, int]:
    """Every named container port of a workload's pod: name -> number."""
    return {
        port["name"]: port["containerPort"]
        for container in pod_containers(workload)
        for port in container.get("ports", [])
        if "name" in port
    }


def scraped_ports(monitor: Manifest, workload: Manifest) -> list[str]:
    """The endpoint ports the operator would scrape on this workload's pods."""
    names = port_numbers(workload)
    return [e["port"] for e in monitor["spec"]["podMetricsEndpoints"] if e["port"] in names]


def scraped_workloads(manifests: list[Manifest]) -> list[Manifest]:
    """Every Deployment of the release: the enabled workers' and the gateway's."""
    workloads = [*deployments_by_worker(manifests).values(), gateway_of(manifests)["Deployment"]]
    assert len(workloads) == len(of_kind(manifests, "Deployment"))
    return workloads


@pytest.fixture(scope="module")
def monitor() -> Manifest:
    return pod_monitor(render(ENABLED))


def test_default_values_render_no_pod_monitor() -> None:
    # Given the shipped values, the PodMonitor off
    assert default_values()["podMonitor"]["enabled"] is False
    for override in (None, every_worker_enabled()):
        # When rendered, Then no PodMonitor: a cluster without the CRDs installs the chart
        assert of_kind(render(override), MONITOR) == []


def test_enabled_renders_one_pod_monitor_with_the_labels_and_interval_from_values() -> None:
    # Given the PodMonitor on, with the label kube-prometheus-stack's podMonitorSelector matches
    values = {
        "podMonitor": {
            "enabled": True,
            "interval": "15s",
            "labels": {"release": "kube-prometheus-stack"},
        }
    }
    # When rendered
    monitor = pod_monitor(render(values))
    # Then it carries the chart's labels and the ones from values
    assert monitor["metadata"]["name"] == f"{RELEASE}-liveops-fleet"
    labels = monitor["metadata"]["labels"]
    assert labels["release"] == "kube-prometheus-stack"
    assert labels["app.kubernetes.io/instance"] == RELEASE
    assert labels["app.kubernetes.io/part-of"] == "liveops-fleet"
    assert component(monitor) == "metrics"
    # And every endpoint scrapes at the interval from values (the shipped one otherwise)
    assert {e["interval"] for e in monitor["spec"]["podMetricsEndpoints"]} == {"15s"}
    shipped = default_values()["podMonitor"]["interval"]
    assert shipped == "30s"
    endpoints = pod_monitor(render(ENABLED))["spec"]["podMetricsEndpoints"]
    assert {e["interval"] for e in endpoints} == {shipped}


@pytest.mark.parametrize(
    "override",
    [ENABLED, {**ENABLED, **every_worker_enabled()}],
    ids=["default-workers", "every-worker"],
)
def test_the_selector_takes_every_worker_and_the_gateway_but_not_the_setup_job(
    override: dict[str, Any],
) -> None:
    # Given the chart rendered with the PodMonitor on
    manifests = render(override)
    selector = pod_monitor(manifests)["spec"]["selector"]
    workers = deployments_by_worker(manifests)
    assert {"rewards", "leaderboards", "velocity"} <= set(workers)
    # Then it selects the pods of every worker Deployment and of the gateway's
    for workload in [*workers.values(), gateway_of(manifests)["Deployment"]]:
        labels = pod_labels(workload)
        assert label_selector_matches(selector, labels), workload["metadata"]["name"]
    # And not the setup Job's, which carries the same release labels
    job = setup_job(manifests)
    assert selector["matchLabels"].items() <= pod_labels(job).items()
    assert not label_selector_matches(selector, pod_labels(job))
    # And not a pod of another release of the chart
    other_release = {**pod_labels(workers["rewards"]), "app.kubernetes.io/instance": "other"}
    assert not label_selector_matches(selector, other_release)


def test_a_new_worker_is_selected_without_a_change_to_the_pod_monitor() -> None:
    """The selector names no worker: only the setup Job is left out by its component."""
    manifests = render({**ENABLED, "workers": {"payouts": {"enabled": True}}})
    selector = pod_monitor(manifests)["spec"]["selector"]
    assert COMPONENT_LABEL not in selector["matchLabels"]
    assert [e for e in selector["matchExpressions"] if e["key"] == COMPONENT_LABEL] == [
        {"key": COMPONENT_LABEL, "operator": "NotIn", "values": ["setup"]}
    ]
    assert label_selector_matches(selector, pod_labels(deployments_by_worker(manifests)["payouts"]))


def test_each_selected_pod_is_scraped_once_on_the_port_it_serves_metrics_on() -> None:
    # Given every worker and the gateway, the PodMonitor on
    manifests = render({**ENABLED, **every_worker_enabled()})
    values = default_values()
    monitor = pod_monitor(manifests)
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    # Then every endpoint scrapes /metrics
    assert {endpoint["path"] for endpoint in endpoints} == {"/metrics"}
    used: set[str] = set()
    for workload in scraped_workloads(manifests):
        name = workload["metadata"]["name"]
        assert label_selector_matches(monitor["spec"]["selector"], pod_labels(workload)), name
        # And each selected pod has exactly one container port an endpoint names
        (port,) = scraped_ports(monitor, workload)
        used.add(port)
        # And it is the port the pod serves /metrics on (its scrape annotations say which)
        number = port_numbers(workload)[port]
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(number), name
        assert annotations["prometheus.io/path"] == "/metrics", name
        is_gateway = component(workload) == GATEWAY
        assert number == values["gateway" if is_gateway else "metrics"]["port"], name
    # And no endpoint is dead: each scrapes some pod of the release
    assert used == {endpoint["port"] for endpoint in endpoints} == {"metrics", "http"}
    # And the setup Job, were it selected, has no port to scrape either
    assert scraped_ports(monitor, setup_job(manifests)) == []


def test_every_target_gets_component_and_pod_labels(
    monitor: Manifest, exported: dict[str, frozenset[str]]
) -> None:
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        by_target = {r["targetLabel"]: r for r in endpoint["relabelings"]}
        assert len(by_target) == len(endpoint["relabelings"]), endpoint["port"]
        assert set(by_target) == {"component", "pod"}
        # The component label of the pod (a worker's name, or gateway) and the pod's name,
        # copied as they are (replace, with the default regex and replacement)
        assert by_target["component"]["sourceLabels"] == [meta_label(COMPONENT_LABEL)]
        assert by_target["pod"]["sourceLabels"] == ["__meta_kubernetes_pod_name"]
        for relabeling in endpoint["relabelings"]:
            assert relabeling["action"] == "replace"
            assert {"regex", "replacement", "separator"}.isdisjoint(relabeling)
    # The meta label is the one Prometheus derives from the pod label.
    assert meta_label(COMPONENT_LABEL) == "__meta_kubernetes_pod_label_app_kubernetes_io_component"
    # No metric carries these labels itself: with honorLabels off, Prometheus would rename it
    # (`exported_job`...), and queries on it would find nothing. `job`, `instance` and
    # `namespace` are the labels every scrape sets.
    for name, labels in exported.items():
        assert {"component", "pod", "job", "instance", "namespace"}.isdisjoint(labels), name


def test_the_pod_monitor_has_the_fields_of_the_crd(monitor: Manifest) -> None:
    """kubernetes-validate knows only Kubernetes' own kinds; the CRD's fields are checked here,
    strictly: the API server would drop a misspelled one, and the scrape with it."""
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(monitor, KUBERNETES_VERSION, strict=True)
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["kind"] == MONITOR
    # The metadata is any object's, and the selector a metav1.LabelSelector: both checked by
    # Kubernetes' own schemas, in a PodDisruptionBudget that holds them.
    spec = monitor["spec"]
    holder: dict[str, Any] = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget"}
    holder["metadata"] = monitor["metadata"]
    holder["spec"] = {"maxUnavailable": 1, "selector": spec["selector"]}
    kubernetes_validate.validate(holder, KUBERNETES_VERSION, strict=True)
    assert set(spec) <= SPEC_FIELDS
    assert set(spec) == {"selector", "podMetricsEndpoints"}
    assert set(spec["selector"]) == {"matchLabels", "matchExpressions"}
    for expression in spec["selector"]["matchExpressions"]:
        assert expression["operator"] in SELECTOR_OPERATORS
    ports = [endpoint["port"] for endpoint in spec["podMetricsEndpoints"]]
    assert len(set(ports)) == len(ports), "two endpoints on one port scrape its pods twice"
    for endpoint in spec["podMetricsEndpoints"]:
        assert set(endpoint) <= ENDPOINT_FIELDS, endpoint
        assert set(endpoint) == {"port", "path", "interval", "relabelings"}, endpoint
        assert isinstance(endpoint["port"], str) and endpoint["port"], endpoint
        assert endpoint["path"].startswith("/"), endpoint
        assert isinstance(endpoint["interval"], str), endpoint
        assert CRD_DURATION.match(endpoint["interval"]), endpoint
        for relabeling in endpoint["relabelings"]:
            assert set(relabeling) <= RELABEL_FIELDS, relabeling
            assert relabeling.get("action", "replace") in RELABEL_ACTIONS, relabeling
            assert all(LABEL_NAME.match(s) for s in relabeling["sourceLabels"]), relabeling
            assert LABEL_NAME.match(relabeling["targetLabel"]), relabeling


def test_helm_lint_is_clean_with_the_pod_monitor_enabled() -> None:
    values = {"podMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}}
    assert_lint_clean(values)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"podMonitor": {"enable": True}}, "'enable' not allowed"),
        ({"podMonitor": {"enabled": "true"}}, "/podMonitor/enabled"),
        ({"podMonitor": {"interval": 30}}, "/podMonitor/interval"),
        ({"podMonitor": {"interval": "30"}}, "/podMonitor/interval"),
        ({"podMonitor": {"interval": "30 s"}}, "/podMonitor/interval"),
        ({"podMonitor": {"interval": "0s"}}, "/podMonitor/interval"),
        ({"podMonitor": {"interval": ""}}, "/podMonitor/interval"),
        ({"podMonitor": {"labels": {"release": 1}}}, "/podMonitor/labels/release"),
        ({"podMonitors": {"enabled": True}}, "'podMonitors' not allowed"),
    ],
)
def test_a_bad_pod_monitor_value_is_refused_by_the_values_schema(
    override: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(named)):
        render(override)


def test_a_good_interval_is_accepted_by_the_values_schema() -> None:
    """The refusals above are the pattern's, not a refusal of every interval."""
    for interval in ("15s", "1m", "1m30s", "500ms", "2h"):
        values = {"podMonitor": {"enabled": True, "interval": interval}}
        endpoints = pod_monitor(render(values))["spec"]["podMetricsEndpoints"]
        assert {e["interval"] for e in endpoints} == {interval}
