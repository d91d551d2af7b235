"""The runbook's alerts (README, Runbook) as the chart's PrometheusRule, as Helm renders it.

Off by default. When on: every rule is an alert with a PromQL expression that parses (the
promql-parser package: a PromQL parser, not a regex), a `for`, a severity of page or ticket and
a summary. Every metric an expression reads, and every label it selects or groups by, is one the
code exports: the registry they are checked against is filled by the real metric holders (the
runtime's, every registered processor's, the gateway's, the publisher's and the stream jobs'),
so a renamed metric or label fails here instead of leaving an alert that can never fire.
kubernetes-validate has no schemas for custom resources: the PrometheusRule's shape is checked
here against the fields of the prometheus-operator CRD (monitoring.coreos.com/v1).
"""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import promql_parser
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector
from test_helm_chart import (
    CHART,
    KUBERNETES_VERSION,
    RELEASE,
    Manifest,
    assert_lint_clean,
    default_values,
    of_kind,
    render,
    settings_from,
)

from producers.gateway.metrics import UNMATCHED_ROUTE, GatewayMetrics
from producers.publisher import PublisherMetrics
from schemas.errors import UndecodableEventError
from topics.catalog import CONSUMER_GROUPS
from workers.processors.registry import PROCESSORS
from workers.runtime.context import WorkerContext
from workers.runtime.metrics import RuntimeMetrics
from workers.runtime.processor import OutcomeKind
from workers.streams.metrics import StreamMetrics

RULE = "PrometheusRule"
REPO = CHART.parents[1]
ENABLED = {"alerts": {"enabled": True}}
#: Every alert the chart ships, and who it wakes: the runbook's table, row by row.
SEVERITIES = {
    "LiveopsConsumerLagGrowing": "page",
    "LiveopsStreamConsumerLagGrowing": "page",
    "LiveopsDependencyDown": "page",
    "LiveopsDeadLetters": "page",
    "LiveopsUndecodableDeadLetters": "ticket",
    "LiveopsRetriesReachLastTier": "ticket",
    "LiveopsRejectedShareDoubled": "ticket",
    "LiveopsDuplicatesHigh": "ticket",
    "LiveopsEndToEndSlow": "ticket",
    "LiveopsHandleTimeRising": "ticket",
    "LiveopsRebalancesFrequent": "ticket",
    "LiveopsLeaderboardOutputsAgain": "ticket",
    "LiveopsLeaderboardPrizesNotPublished": "ticket",
    "LiveopsLeaderboardPeriodClosedOverdue": "ticket",
    "LiveopsStreamLagUnmeasured": "ticket",
    "LiveopsPublisherFailures": "page",
    "LiveopsGateway4xxShareRising": "ticket",
}
#: Names as the regex finds them in an expression (a cross-check of the parser's walk).
METRIC_NAME = re.compile(r"\bliveops_[a-z0-9_]+")
#: A label an annotation shows, as Prometheus templates it: {{ $labels.processor }}.
ANNOTATION_LABEL = re.compile(r"\$labels\.(\w+)")
#: The metric definitions in the source: Counter("liveops_...", Gauge(..., Histogram(...
METRIC_DEFINITION = re.compile(r"\b(?:Counter|Gauge|Histogram|Summary)\(\s*\"(liveops_\w+)\"")
#: Durations as the CRD accepts them (`for`, `interval`, `keep_firing_for`).
CRD_DURATION = re.compile(
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
#: The fields of the CRD's RuleGroup and Rule; the API server would drop any other silently.
GROUP_FIELDS = {"name", "interval", "rules", "labels", "limit", "partial_response_strategy"}
GROUP_FIELDS |= {"query_offset"}
RULE_FIELDS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}


class RecordingRegistry(CollectorRegistry):
    """A registry that keeps the collectors registered on it, to read their label names."""

    def __init__(self) -> None:
        super().__init__()
        self.collectors: list[Collector] = []

    def register(self, collector: Collector) -> None:
        super().register(collector)
        self.collectors.append(collector)


def exported_metrics(registry: RecordingRegistry) -> dict[str, frozenset[str]]:
    """Each sample name the registry exposes -> its label names (le of histogram buckets too).

    A labelled metric exposes nothing before its first child: one child each is made here, so
    that collect() shows the very names and labels a scrape would (x_total, x_bucket, ...)."""
    for collector in registry.collectors:
        if isinstance(collector, MetricWrapperBase) and collector._labelnames:
            # prometheus-client has no public accessor for a metric's label names.
            collector.labels(*("stand-in" for _ in collector._labelnames))
    exported: dict[str, set[str]] = {}
    for family in registry.collect():
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in exported.items()}


@pytest.fixture(scope="module")
def registry() -> RecordingRegistry:
    """One registry filled by every metric holder of the code, as the processes build them."""
    registry = RecordingRegistry()
    RuntimeMetrics(registry)
    GatewayMetrics(registry)
    PublisherMetrics(registry)
    StreamMetrics(registry)
    with pytest.MonkeyPatch.context() as patch:
        settings = settings_from({}, patch)
    # Building a processor opens nothing: the clients are only kept (and Lua scripts hashed).
    # The MySQL pool is never touched before start(), so none is made.
    context = WorkerContext(settings, aioredis.Redis(), None, registry)
    for build in PROCESSORS.values():
        build(context)
    return registry


@pytest.fixture(scope="module")
def exported(registry: RecordingRegistry) -> dict[str, frozenset[str]]:
    return exported_metrics(registry)


@pytest.fixture(scope="module")
def prometheus_rule() -> Manifest:
    (rule,) = of_kind(render(ENABLED), RULE)
    return rule


def alert_rules(prometheus_rule: Manifest) -> dict[str, Manifest]:
    """Every rule of every group, by alert name."""
    rules = [rule for group in prometheus_rule["spec"]["groups"] for rule in group["rules"]]
    by_name = {rule["alert"]: rule for rule in rules}
    assert len(by_name) == len(rules), "two rules with one alert name"
    return by_name


def nodes_of(expr: promql_parser.Expr) -> list[promql_parser.Expr]:
    """Every node of a parsed expression, depth first."""
    nodes: list[promql_parser.Expr] = []

    def visit(node: promql_parser.Expr) -> None:
        nodes.append(node)

    promql_parser.walk(expr, pre_visit=visit)
    return nodes


def selectors_of(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    return [n for n in nodes_of(expr) if isinstance(n, promql_parser.VectorSelector)]


def groupings_of(expr: promql_parser.Expr) -> list[tuple[list[str], promql_parser.Expr]]:
    """(label names, the node they group) of each `by`/`without` and `on`/`ignoring` clause."""
    groupings: list[tuple[list[str], promql_parser.Expr]] = []
    for node in nodes_of(expr):
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            groupings.append((node.modifier.labels, node.expr))
        if isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            matching = node.modifier.matching
            if matching is not None:
                groupings.append((matching.labels, node))
    return groupings


def assert_reads_only_exported(
    expr: promql_parser.Expr, exported: dict[str, frozenset[str]], name: str
) -> set[str]:
    """Each metric `expr` reads is one the code exports (under that very name: x_total,
    x_bucket, ...), each label a selector matches is one of its metric's, and each label
    grouped by (by, on) is one of every metric under that clause. Returns the metrics read."""
    selectors = selectors_of(expr)
    metrics = {s.name for s in selectors if s.name is not None}
    assert metrics, name
    unknown = metrics - exported.keys()
    assert unknown == set(), f"{name} reads metrics the code does not export: {unknown}"
    for selector in selectors:
        assert selector.name is not None
        matched = {m.name for m in selector.matchers.matchers} - {"__name__"}
        assert matched <= exported[selector.name], (name, selector.name, matched)
    for labels, node in groupings_of(expr):
        for selector in selectors_of(node):
            assert selector.name is not None
            missing = set(labels) - exported[selector.name]
            assert missing == set(), f"{name}: {selector.name} has no label {missing}"
    return metrics


def matched_values(rules: dict[str, Manifest]) -> dict[str, set[str]]:
    """Label name -> the values the expressions compare it with (a regex's alternatives)."""
    values: dict[str, set[str]] = {}
    for rule in rules.values():
        for selector in selectors_of(promql_parser.parse(rule["expr"])):
            for matcher in selector.matchers.matchers:
                if matcher.name != "__name__":
                    values.setdefault(matcher.name, set()).update(matcher.value.split("|"))
    return values


def numbers_of(expr: str) -> set[float]:
    nodes = nodes_of(promql_parser.parse(expr))
    return {n.val for n in nodes if isinstance(n, promql_parser.NumberLiteral)}


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_default_values_render_no_prometheus_rule() -> None:
    # Given the shipped values, alerts off
    assert default_values()["alerts"]["enabled"] is False
    # When rendered, Then no PrometheusRule: a cluster without the CRDs installs the chart
    assert of_kind(render(), RULE) == []


def test_enabled_renders_one_rule_with_every_alert_and_the_labels_from_values() -> None:
    # Given alerts on, with the label kube-prometheus-stack's ruleSelector matches
    values = {"alerts": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}}
    # When rendered
    (rule,) = of_kind(render(values), RULE)
    # Then one PrometheusRule holds every alert, each with its severity
    assert rule["metadata"]["name"] == f"{RELEASE}-liveops-fleet-alerts"
    severities = {name: r["labels"]["severity"] for name, r in alert_rules(rule).items()}
    assert severities == SEVERITIES
    assert [group["name"] for group in rule["spec"]["groups"]] == [
        "liveops-fleet.workers",
        "liveops-fleet.leaderboards",
        "liveops-fleet.gateway",
    ]
    # And it carries the chart's labels and the ones from values
    labels = rule["metadata"]["labels"]
    assert labels["release"] == "kube-prometheus-stack"
    assert labels["app.kubernetes.io/instance"] == RELEASE
    assert labels["app.kubernetes.io/part-of"] == "liveops-fleet"


def test_every_rule_is_an_alert_with_a_duration_a_severity_and_a_summary(
    prometheus_rule: Manifest,
) -> None:
    for name, rule in alert_rules(prometheus_rule).items():
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
        assert CRD_DURATION.match(rule["for"]), name
        assert promql_parser.parse_duration(rule["for"]).total_seconds() >= 60, name
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name


def test_every_expression_parses_as_promql(prometheus_rule: Manifest) -> None:
    for name, rule in alert_rules(prometheus_rule).items():
        try:
            promql_parser.parse(rule["expr"])
        except ValueError as exc:
            pytest.fail(f"{name}: {exc}\n{rule['expr']}")
        # A quantile of buckets summed without le is no quantile: keep le in every sum.
        for node in nodes_of(promql_parser.parse(rule["expr"])):
            if isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
                for inner in nodes_of(node):
                    if isinstance(inner, promql_parser.AggregateExpr):
                        assert inner.modifier is not None, name
                        assert "le" in inner.modifier.labels, name
    # The check can fail: a missing parenthesis or a range where a vector goes is refused.
    for broken in ("sum by (processor) (liveops_consumer_lag", "rate(liveops_consumer_lag)"):
        with pytest.raises(ValueError, match=r"."):
            promql_parser.parse(broken)


def test_every_metric_and_label_an_expression_uses_is_exported_by_the_code(
    prometheus_rule: Manifest, exported: dict[str, frozenset[str]]
) -> None:
    """An alert on a metric or label the code does not export is never firing, silently."""
    for name, rule in alert_rules(prometheus_rule).items():
        expr = promql_parser.parse(rule["expr"])
        # Each metric it reads is exported, with the labels it matches and groups by
        metrics = assert_reads_only_exported(expr, exported, name)
        # And the parser's reading of the metrics agrees with a regex's
        assert metrics == set(METRIC_NAME.findall(rule["expr"])), name
        # And each $labels.x an annotation shows is one the expression keeps (by, on)
        kept = {label for labels, _ in groupings_of(expr) for label in labels}
        for text in rule["annotations"].values():
            shown = set(ANNOTATION_LABEL.findall(text))
            assert shown <= kept, f"{name}: an annotation shows {shown - kept}, always empty"


def test_exported_names_are_the_scraped_ones_with_their_suffixes(
    exported: dict[str, frozenset[str]],
) -> None:
    # The leaderboard counters are named without _total in the code: exported with it.
    assert "liveops_leaderboard_outputs_again_total" in exported
    assert "liveops_leaderboard_outputs_again" not in exported
    # Histograms are read through their buckets, which carry le.
    assert exported["liveops_end_to_end_seconds_bucket"] == {"processor", "le"}
    assert "liveops_end_to_end_seconds" not in exported
    # The lag has no reason_class to select.
    assert "reason_class" not in exported["liveops_consumer_lag"]
    # The stream jobs' lag and its failed reads are there, as the stream jobs export them.
    assert exported["liveops_stream_consumer_lag"] == {"stream", "topic", "partition"}
    assert exported["liveops_stream_lag_reads_failed_total"] == {"stream"}


def test_the_registry_holds_every_metric_the_code_defines(registry: RecordingRegistry) -> None:
    """The check above is only as good as the registry: a metric holder left out of the
    fixture (a new processor's, say) would make its metrics look unexported."""
    families = {family.name for family in registry.collect()}
    sources = [
        path for package in ("workers", "producers") for path in (REPO / package).rglob("*.py")
    ]
    defined = {
        name.removesuffix("_total")  # prometheus-client names a counter's family without it
        for path in sources
        for name in METRIC_DEFINITION.findall(path.read_text())
    }
    assert "liveops_consumer_lag" in defined
    assert defined - families == set()


def test_the_label_values_the_rules_match_are_ones_the_code_writes(
    prometheus_rule: Manifest,
) -> None:
    values = matched_values(alert_rules(prometheus_rule))
    # Every label an expression compares with a value is checked below.
    assert set(values) == {"outcome", "tier", "reason_class", "route", "status"}
    assert values["outcome"] <= {kind.value for kind in OutcomeKind}
    # The retry tiers are labelled as their topic names end; 10m is every group's last tier.
    last_tiers = {group.retry_tiers[-1].topic.name.rsplit(".", 1)[-1] for group in CONSUMER_GROUPS}
    assert values["tier"] == last_tiers == {"10m"}
    # reason_class is the error's class name (workers/runtime/handling.py).
    assert values["reason_class"] == {UndecodableEventError.__name__}
    assert values["route"] == {UNMATCHED_ROUTE}
    assert values["status"] == {"4.."}


@pytest.mark.parametrize(
    ("key", "value", "alert"),
    [
        ("consumerLagRecords", 123457, "LiveopsConsumerLagGrowing"),
        ("streamConsumerLagRecords", 54321, "LiveopsStreamConsumerLagGrowing"),
        ("endToEndP99Seconds", 7.5, "LiveopsEndToEndSlow"),
        ("rebalancesPerHour", 11, "LiveopsRebalancesFrequent"),
        ("duplicateShare", 0.35, "LiveopsDuplicatesHigh"),
        ("rejectedShareMinimum", 0.02, "LiveopsRejectedShareDoubled"),
        ("gateway4xxShareMinimum", 0.07, "LiveopsGateway4xxShareRising"),
        ("handleP99MinimumSeconds", 0.75, "LiveopsHandleTimeRising"),
    ],
)
def test_each_threshold_comes_from_values(key: str, value: float, alert: str) -> None:
    # Given the shipped threshold, in its alert's expression
    (shipped,) = of_kind(render(ENABLED), RULE)
    assert default_values()["alerts"][key] in numbers_of(alert_rules(shipped)[alert]["expr"])
    # When another one is set
    (rule,) = of_kind(render({"alerts": {"enabled": True, key: value}}), RULE)
    # Then the expression compares with it
    assert value in numbers_of(alert_rules(rule)[alert]["expr"])


def test_the_ticket_only_dead_letter_classes_come_from_values() -> None:
    classes = ["UndecodableEventError", "InvalidEnvelopeError"]
    (rule,) = of_kind(
        render({"alerts": {"enabled": True, "ticketOnlyDeadLetterClasses": classes}}), RULE
    )
    rules = alert_rules(rule)
    (page,) = selectors_of(promql_parser.parse(rules["LiveopsDeadLetters"]["expr"]))
    (ticket,) = selectors_of(promql_parser.parse(rules["LiveopsUndecodableDeadLetters"]["expr"]))
    assert [str(m) for m in page.matchers.matchers] == [
        'reason_class!~"UndecodableEventError|InvalidEnvelopeError"'
    ]
    assert [str(m) for m in ticket.matchers.matchers] == [
        'reason_class=~"UndecodableEventError|InvalidEnvelopeError"'
    ]


def test_runbook_urls_point_at_readme_sections_only_when_a_base_is_given(
    prometheus_rule: Manifest,
) -> None:
    # Given no runbookBaseUrl (the default): no rule has a runbook_url
    for rule in alert_rules(prometheus_rule).values():
        assert "runbook_url" not in rule["annotations"]
    # When one is given
    base = "https://git.example.com/liveops/liveops-fleet/blob/main/README.md"
    (rule,) = of_kind(render({"alerts": {"enabled": True, "runbookBaseUrl": base}}), RULE)
    # Then every rule links to a section of the README
    headings = re.findall(r"^#+ (.+)$", (REPO / "README.md").read_text(), flags=re.MULTILINE)
    anchors = {github_anchor(heading) for heading in headings}
    for name, r in alert_rules(rule).items():
        url, _, anchor = r["annotations"]["runbook_url"].partition("#")
        assert url == base, name
        assert anchor in anchors, name
    assert alert_rules(rule)["LiveopsDeadLetters"]["annotations"]["runbook_url"] == (
        f"{base}#when-the-dead-letter-rate-rises"
    )


def test_the_prometheus_rule_has_the_fields_of_the_crd(prometheus_rule: Manifest) -> None:
    """kubernetes-validate knows only Kubernetes' own kinds; the CRD's fields are checked here,
    strictly: the API server would drop a misspelled one, and the rule with it."""
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(prometheus_rule, KUBERNETES_VERSION, strict=True)
    assert set(prometheus_rule) == {"apiVersion", "kind", "metadata", "spec"}
    assert prometheus_rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert prometheus_rule["kind"] == RULE
    # The metadata is any object's: checked as a ConfigMap's by Kubernetes' own schema.
    holder: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap"}
    holder["metadata"] = prometheus_rule["metadata"]
    kubernetes_validate.validate(holder, KUBERNETES_VERSION, strict=True)
    spec = prometheus_rule["spec"]
    assert set(spec) == {"groups"}
    names = [group["name"] for group in spec["groups"]]
    assert len(set(names)) == len(names), "group names are the list's keys in the CRD"
    for group in spec["groups"]:
        assert set(group) <= GROUP_FIELDS, group["name"]
        assert group["name"] and group["rules"], group["name"]
        for rule in group["rules"]:
            assert set(rule) <= RULE_FIELDS, rule
            assert isinstance(rule["expr"], str) and isinstance(rule["alert"], str)
            assert "record" not in rule
            for field in ("labels", "annotations"):
                assert all(isinstance(v, str) for v in rule.get(field, {}).values()), rule


def test_helm_lint_is_clean_with_alerts_enabled() -> None:
    values = {"alerts": {"enabled": True, "runbookBaseUrl": "https://x.example/README.md"}}
    assert_lint_clean(values)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"alerts": {"enable": True}}, "'enable' not allowed"),
        ({"alerts": {"consumerLagRecords": "10000"}}, "/alerts/consumerLagRecords"),
        ({"alerts": {"streamConsumerLagRecords": -1}}, "/alerts/streamConsumerLagRecords"),
        ({"alerts": {"duplicateShare": 25}}, "/alerts/duplicateShare"),
        (
            {"alerts": {"runbookBaseUrl": "https://x.example/README.md#runbook"}},
            "/alerts/runbookBaseUrl",
        ),
        ({"alerts": {"labels": {"release": 1}}}, "/alerts/labels/release"),
        ({"alerts": {"ticketOnlyDeadLetterClasses": []}}, "/alerts/ticketOnlyDeadLetterClasses"),
        (
            {"alerts": {"ticketOnlyDeadLetterClasses": ["Undecodable.*"]}},
            "/alerts/ticketOnlyDeadLetterClasses/0",
        ),
    ],
)
def test_a_bad_alerts_value_is_refused_by_the_values_schema(
    override: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(named)):
        render(override)
