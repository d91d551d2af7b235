"""The chart's HorizontalPodAutoscalers (autoscaling/v2), as Helm itself renders them.

Off by default. When on, each HPA scales exactly one Deployment of the release (the gateway's or
one worker's), and that Deployment sets no spec.replicas: every `helm upgrade` would otherwise
reset the HPA's count. Workers are Kafka consumers: every scale-down is a rebalance, so it is
slow and one pod at a time, and the optional lag metric selects the worker's own processor.
Values no HPA could honour are refused at render, with the reason.
"""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
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
    render,
)

HPA = "HorizontalPodAutoscaler"
#: The gateway's Deployment, as templates/gateway.yaml names it.
GATEWAY_DEPLOYMENT = f"{RELEASE}-liveops-fleet-gateway"
#: A worker's scale-down: one pod per minute, after five minutes of lower recommendations.
SCALE_DOWN = {
    "stabilizationWindowSeconds": 300,
    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
}


def autoscalers_by_component(manifests: list[Manifest]) -> dict[str, Manifest]:
    """The HPAs by component label (a worker's name, or `gateway`)."""
    hpas = of_kind(manifests, HPA)
    by_component = {component(hpa): hpa for hpa in hpas}
    assert len(by_component) == len(hpas), "two HPAs for one component"
    return by_component


def cpu_metric(utilization: int) -> Manifest:
    return {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": utilization},
        },
    }


def scale_target(deployment: Manifest) -> Manifest:
    """The scaleTargetRef that names exactly this Deployment."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}


def with_every_worker(override: dict[str, Any]) -> dict[str, Any]:
    """every_worker_enabled() with more values (which must not touch `workers`)."""
    assert "workers" not in override
    return {**every_worker_enabled(), **override}


def test_default_values_render_no_autoscaler_and_every_deployment_keeps_its_replicas() -> None:
    # Given the shipped values, with autoscaling off everywhere
    values = default_values()
    assert values["gateway"]["autoscaling"]["enabled"] is False
    assert values["workerDefaults"]["autoscaling"]["enabled"] is False
    for override in (None, every_worker_enabled()):
        # When rendered (as shipped, and with every worker on)
        manifests = render(override)
        # Then no HPA, and every Deployment, the gateway's too, sets its replicas itself
        assert of_kind(manifests, HPA) == []
        deployments = of_kind(manifests, "Deployment")
        assert len(deployments) >= 4
        for deployment in deployments:
            assert deployment["spec"]["replicas"] >= 2, deployment["metadata"]["name"]


def test_an_autoscaled_gateway_is_scaled_by_an_hpa_on_its_own_deployment() -> None:
    # Given the gateway autoscaled, with values other than the defaults
    autoscaling = {"minReplicas": 3, "maxReplicas": 7, "targetCPUUtilizationPercentage": 65}
    # When rendered
    manifests = render({"gateway": {"autoscaling": {"enabled": True, **autoscaling}}})
    gateway = gateway_of(manifests)
    deployment, hpa = gateway["Deployment"], gateway[HPA]
    # Then one HPA, the gateway's, named like and targeting exactly the gateway's Deployment
    assert set(autoscalers_by_component(manifests)) == {GATEWAY}
    assert deployment["metadata"]["name"] == GATEWAY_DEPLOYMENT
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["metadata"]["name"] == GATEWAY_DEPLOYMENT
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": GATEWAY_DEPLOYMENT,
    }
    # And it scales between the values' bounds, on their CPU target only
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 7)
    assert hpa["spec"]["metrics"] == [cpu_metric(65)]
    # And the gateway's Deployment leaves the count to it; the workers keep theirs
    assert "replicas" not in deployment["spec"]
    for worker in deployments_by_worker(manifests).values():
        assert "replicas" in worker["spec"], worker["metadata"]["name"]


def test_an_autoscaled_worker_gets_an_hpa_for_exactly_its_deployment() -> None:
    # Given autoscaling on in the worker defaults, with every worker on
    manifests = render(with_every_worker({"workerDefaults": {"autoscaling": {"enabled": True}}}))
    defaults = default_values()["workerDefaults"]["autoscaling"]
    deployments = deployments_by_worker(manifests)
    # When the HPAs are read
    hpas = autoscalers_by_component(manifests)
    # Then each worker, and only the workers, has one targeting its own Deployment
    assert set(hpas) == set(deployments) == set(default_values()["workers"])
    for name, hpa in hpas.items():
        deployment = deployments[name]
        assert deployment["metadata"]["name"] == f"{RELEASE}-liveops-fleet-{name}"
        assert hpa["metadata"]["name"] == deployment["metadata"]["name"]
        assert hpa["spec"]["scaleTargetRef"] == scale_target(deployment)
        assert hpa["spec"]["minReplicas"] == defaults["minReplicas"] == 2
        assert hpa["spec"]["maxReplicas"] == defaults["maxReplicas"] == 6
        assert hpa["spec"]["metrics"] == [cpu_metric(defaults["targetCPUUtilizationPercentage"])]
        # And a scale-down (a consumer-group rebalance) is slow and one pod at a time
        assert hpa["spec"]["behavior"] == {"scaleDown": SCALE_DOWN}
        # And the Deployment leaves the count to it
        assert "replicas" not in deployment["spec"], name
    # And the gateway is not autoscaled by the workers' defaults
    assert gateway_of(manifests)["Deployment"]["spec"]["replicas"] == 2


def test_a_workers_own_autoscaling_overrides_only_that_worker() -> None:
    # Given rewards autoscaled up to its input topic's 12 partitions, after 10 minutes
    override = {
        "workers": {
            "rewards": {
                "autoscaling": {
                    "enabled": True,
                    "maxReplicas": 12,
                    "scaleDownStabilizationSeconds": 600,
                }
            }
        }
    }
    # When rendered
    manifests = render(override)
    hpas = autoscalers_by_component(manifests)
    deployments = deployments_by_worker(manifests)
    # Then only rewards has an HPA: its own keys, the defaults' for the rest
    assert set(hpas) == {"rewards"}
    spec = hpas["rewards"]["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 12)
    assert spec["metrics"] == [cpu_metric(70)]
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert spec["scaleTargetRef"] == scale_target(deployments["rewards"])
    # And only rewards' Deployment gives up its replicas
    assert {name: d["spec"].get("replicas") for name, d in deployments.items()} == {
        "rewards": None,
        "leaderboards": 3,
        "velocity": 2,
    }
    # And a worker can turn off what the defaults turn on
    opt_out: dict[str, Any] = {
        "workerDefaults": {"autoscaling": {"enabled": True}},
        "workers": {"velocity": {"autoscaling": {"enabled": False}}},
    }
    manifests = render(opt_out)
    assert set(autoscalers_by_component(manifests)) == {"rewards", "leaderboards"}
    assert deployments_by_worker(manifests)["velocity"]["spec"]["replicas"] == 2


def test_the_lag_metric_is_external_and_selects_the_workers_processor() -> None:
    # Given the lag metric on in the defaults, and leaderboards with its own target (a number)
    override = {
        "workerDefaults": {"autoscaling": {"enabled": True, "lag": {"enabled": True}}},
        "workers": {"leaderboards": {"autoscaling": {"lag": {"targetAverageValue": 5000}}}},
    }
    # When rendered
    hpas = autoscalers_by_component(render(override))
    # Then each worker's HPA scales on CPU and on the lag of its own processor
    expected_targets = {"rewards": "10000", "leaderboards": "5000", "velocity": "10000"}
    assert set(hpas) == set(expected_targets)
    for name, hpa in hpas.items():
        cpu, lag = hpa["spec"]["metrics"]
        assert cpu == cpu_metric(70)
        assert lag == {
            "type": "External",
            "external": {
                "metric": {
                    "name": "liveops_consumer_lag",
                    "selector": {"matchLabels": {"processor": name}},
                },
                "target": {"type": "AverageValue", "averageValue": expected_targets[name]},
            },
        }


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        (
            {"gateway": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 4}}},
            "gateway.autoscaling: minReplicas (5) is above maxReplicas (4)",
        ),
        (
            {
                "workerDefaults": {"autoscaling": {"minReplicas": 8}},
                "workers": {"rewards": {"autoscaling": {"enabled": True}}},
            },
            "workers.rewards.autoscaling: minReplicas (8) is above maxReplicas (6)",
        ),
        (
            {"gateway": {"autoscaling": {"enabled": True, "minReplicas": 1}}},
            "gateway.autoscaling.minReplicas (1) must be 2 or more while "
            "gateway.podDisruptionBudget is enabled",
        ),
        (
            {"gateway": {"autoscaling": {"enabled": True}, "resources": {"requests": None}}},
            "gateway.autoscaling: targetCPUUtilizationPercentage needs "
            "gateway.resources.requests.cpu",
        ),
        (
            {
                "workers": {
                    "rewards": {
                        "autoscaling": {"enabled": True},
                        "resources": {"requests": {"cpu": None}},
                    }
                }
            },
            "workers.rewards.autoscaling: targetCPUUtilizationPercentage needs "
            "workers.rewards.resources.requests.cpu",
        ),
    ],
)
def test_autoscaling_no_hpa_could_honour_is_refused(override: dict[str, Any], reason: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=re.escape(reason)):
        render(override)


def test_a_one_pod_minimum_is_allowed_once_the_gateways_budget_is_off() -> None:
    # Given one gateway pod at least, and no budget that would let a drain take it
    override = {
        "gateway": {
            "autoscaling": {"enabled": True, "minReplicas": 1},
            "podDisruptionBudget": {"enabled": False},
        }
    }
    # When rendered, Then the HPA goes down to one pod
    assert gateway_of(render(override))[HPA]["spec"]["minReplicas"] == 1


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"gateway": {"autoscaling": {"maxReplica": 3}}}, "'maxReplica' not allowed"),
        ({"gateway": {"autoscaling": {"lag": {"enabled": True}}}}, "'lag' not allowed"),
        ({"gateway": {"autoscaling": {"minReplicas": 0}}}, "/gateway/autoscaling/minReplicas"),
        (
            {"workerDefaults": {"autoscaling": {"targetCPUUtilizationPercentage": "70%"}}},
            "/workerDefaults/autoscaling/targetCPUUtilizationPercentage",
        ),
        (
            {"workers": {"rewards": {"autoscaling": {"lag": {"metric": "lag"}}}}},
            "'metric' not allowed",
        ),
        (
            {"workers": {"rewards": {"autoscaling": {"lag": {"targetAverageValue": "lots"}}}}},
            "/workers/rewards/autoscaling/lag/targetAverageValue",
        ),
        (
            {"workerDefaults": {"autoscaling": {"scaleDownStabilizationSeconds": 7200}}},
            "/workerDefaults/autoscaling/scaleDownStabilizationSeconds",
        ),
    ],
)
def test_a_misspelled_autoscaling_override_is_refused_by_the_values_schema(
    override: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(named)):
        render(override)


def test_every_autoscaler_passes_the_strict_kubernetes_schemas_and_helm_lint() -> None:
    # Given everything autoscaled, the lag metric included, with every worker on
    override = with_every_worker(
        {
            "gateway": {"autoscaling": {"enabled": True}},
            "workerDefaults": {"autoscaling": {"enabled": True, "lag": {"enabled": True}}},
        }
    )
    # When rendered
    manifests = render(override)
    hpas = of_kind(manifests, HPA)
    # Then one HPA per Deployment, and every manifest passes Kubernetes' strict schemas
    deployments = of_kind(manifests, "Deployment")
    assert len(hpas) == len(deployments) == len(default_values()["workers"]) + 1
    for manifest in manifests:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    # And helm lint has no warning or error
    assert_lint_clean(override)


def test_the_schemas_refuse_a_malformed_autoscaler() -> None:
    """The check above can fail: an HPA field out of Kubernetes' schema is caught."""
    hpa = gateway_of(render({"gateway": {"autoscaling": {"enabled": True}}}))[HPA]
    hpa["spec"]["scaleTargetRef"]["namespace"] = "elsewhere"
    with pytest.raises(kubernetes_validate.ValidationError, match="namespace"):
        kubernetes_validate.validate(hpa, KUBERNETES_VERSION, strict=True)
