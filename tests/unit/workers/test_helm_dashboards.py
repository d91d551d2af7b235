"""The fleet's Grafana dashboard, a file in the chart (dashboards/liveops-fleet.json), as the
ConfigMap Grafana's dashboard sidecar loads, as Helm renders it.

Off by default. When on: one ConfigMap with the sidecar's label from values, holding the chart's
file as it is. Every query of every panel, its dashboard variables replaced by stand-ins as
Grafana replaces them, parses as PromQL (promql-parser) and reads only metrics and labels the
code exports: the registry and the PromQL helpers are test_helm_alerts.py's, so a renamed metric
or label fails here instead of leaving a panel that stays empty. Each selector of a metric
labelled by processor follows the $processor variable; every panel reads the $datasource
variable, says in one sentence what it shows and what to do, has an id of its own and a place on
the grid no other panel takes; and every metric of the README's runbook table has a panel.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import promql_parser
import pytest
from test_helm_alerts import (
    REPO,
    assert_reads_only_exported,
    exported,
    groupings_of,
    nodes_of,
    registry,
    selectors_of,
)
from test_helm_chart import (
    CHART,
    KUBERNETES_VERSION,
    RELEASE,
    Manifest,
    assert_lint_clean,
    default_values,
    every_worker_enabled,
    of_kind,
    render,
)

# The registry of every metric the code exports, built as test_helm_alerts.py builds it.
__all__ = ["exported", "registry"]

DASHBOARD_FILE = CHART / "dashboards" / "liveops-fleet.json"
DATA_KEY = "liveops-fleet.json"
ENABLED = {"dashboards": {"enabled": True}}
COMPONENT_LABEL = "app.kubernetes.io/component"
GRID_COLUMNS = 24
#: The dashboard's own variables, each as Grafana sends its All value (the variable's allValue).
VARIABLE_STAND_INS = {"processor": ".*"}
#: Grafana's built-in interval variables, each as some duration.
INTERVAL_STAND_INS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
#: A variable in a query, as Grafana spells one: ${name}, $name or (deprecated) [[name]].
VARIABLE_REFERENCE = re.compile(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]")
#: The selector every metric labelled by processor takes in a query, before the stand-ins.
PROCESSOR_MATCHER = 'processor=~"$processor"'
#: A label a legend shows: {{processor}}.
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
#: The query of a variable that lists a label's values: label_values(metric, label).
LABEL_VALUES = re.compile(r"^label_values\((\w+),\s*(\w+)\)$")
#: The samples a histogram is read through, each named as its family plus one of these.
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")
#: Every row of the dashboard and its panels, left to right and top to bottom.
ROWS = {
    "Throughput": [
        "Events consumed per second",
        "Outcomes per second, by kind",
        "Duplicate share of outcomes",
    ],
    "Consumer lag": [
        "Consumer lag per processor",
        "Consumer lag per partition, top 20",
        "Velocity job lag per partition",
    ],
    "Retries and dead letters": [
        "Dead letters per second, by reason class",
        "Retries per second, by tier",
    ],
    "Latency and batches": [
        "End-to-end latency, p50 and p99",
        "Handle time per batch, p99",
        "Records per batch, mean",
    ],
    "Dependencies and rebalances": ["Dependency up", "Rebalances per hour"],
    "Rewards and leaderboards": [
        "Rewards refusals per second, by reason",
        "Leaderboard rejections per second, by reason",
        "Leaderboard outputs again per second",
        "Leaderboard periods closed, prizes and overdue closes",
    ],
    "Gateway": [
        "Gateway requests per second, by route and status class",
        "Publisher failures per second",
    ],
}

Json = dict[str, Any]


def dashboard_config_maps(manifests: list[Manifest]) -> list[Manifest]:
    return [
        config_map
        for config_map in of_kind(manifests, "ConfigMap")
        if config_map["metadata"]["labels"].get(COMPONENT_LABEL) == "dashboards"
    ]


def read_dashboard() -> Json:
    dashboard: Json = json.loads(DASHBOARD_FILE.read_text())
    return dashboard


def rows_of(dashboard: Json) -> list[Json]:
    return [panel for panel in dashboard["panels"] if panel["type"] == "row"]


def panels_of(dashboard: Json) -> list[Json]:
    """Every panel but the rows (a row only heads the panels below it)."""
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def variables_of(dashboard: Json) -> dict[str, Json]:
    variables: list[Json] = dashboard["templating"]["list"]
    return {variable["name"]: variable for variable in variables}


def queries_of(dashboard: Json) -> list[tuple[str, Json]]:
    """(panel title, target) of every query of every panel."""
    return [
        (panel["title"], target) for panel in panels_of(dashboard) for target in panel["targets"]
    ]


def with_stand_ins(expr: str) -> str:
    """The query as Prometheus gets it from Grafana: every variable replaced (KeyError names a
    variable the dashboard does not have)."""

    def stand_in(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group is not None)
        return {**VARIABLE_STAND_INS, **INTERVAL_STAND_INS}[name]

    return VARIABLE_REFERENCE.sub(stand_in, expr)


def overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    """Whether two gridPos rectangles share a cell."""
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def runbook_metrics() -> set[str]:
    """The metrics the README's table "Metrics, and what to do" has a row for."""
    readme = (REPO / "README.md").read_text()
    _, _, section = readme.partition("### Metrics, and what to do")
    table = section.split("\n### ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `liveops_")]
    return {name for row in rows for name in re.findall(r"`(liveops_\w+)", row.split("|")[1])}


@pytest.fixture(scope="module")
def dashboard() -> Json:
    return read_dashboard()


def test_default_values_render_no_dashboard_config_map() -> None:
    # Given the shipped values, the dashboard off, with the sidecar's label ready
    assert default_values()["dashboards"] == {
        "enabled": False,
        "labels": {"grafana_dashboard": "1"},
        "annotations": {},
    }
    monitoring_on = {"alerts": {"enabled": True}, "podMonitor": {"enabled": True}}
    for override in (None, every_worker_enabled(), monitoring_on):
        # When rendered, Then the only ConfigMap is the settings'
        config_maps = of_kind(render(override), "ConfigMap")
        assert [m["metadata"]["name"] for m in config_maps] == [f"{RELEASE}-liveops-fleet-config"]
        assert dashboard_config_maps(config_maps) == []


def test_enabled_renders_one_config_map_with_the_labels_annotations_and_the_charts_file() -> None:
    # Given the dashboard on, with another label and the sidecar's folder annotation
    values = {
        "dashboards": {
            "enabled": True,
            "labels": {"team": "liveops"},
            "annotations": {"grafana_folder": "liveops"},
        }
    }
    # When rendered
    (config_map,) = dashboard_config_maps(render(values))
    # Then it carries the chart's labels, the sidecar's (kept from the defaults) and the new one
    metadata = config_map["metadata"]
    assert metadata["name"] == f"{RELEASE}-liveops-fleet-dashboards"
    labels = metadata["labels"]
    assert labels["grafana_dashboard"] == "1"
    assert labels["team"] == "liveops"
    assert labels["app.kubernetes.io/instance"] == RELEASE
    assert labels["app.kubernetes.io/part-of"] == "liveops-fleet"
    # And exactly the annotations from values
    assert metadata["annotations"] == {"grafana_folder": "liveops"}
    # And one dashboard, the chart's file as it is
    assert set(config_map["data"]) == {DATA_KEY}
    assert json.loads(config_map["data"][DATA_KEY]) == read_dashboard()
    # And without annotations in values, none at all
    (plain,) = dashboard_config_maps(render(ENABLED))
    assert "annotations" not in plain["metadata"]


def test_the_config_map_passes_the_strict_kubernetes_schemas() -> None:
    for annotated in ({}, {"grafana_folder": "liveops"}):
        values = {"dashboards": {"enabled": True, "annotations": annotated}}
        (config_map,) = dashboard_config_maps(render(values))
        kubernetes_validate.validate(config_map, KUBERNETES_VERSION, strict=True)


def test_the_dashboard_file_is_readable_json_that_the_chart_ships(tmp_path: Path) -> None:
    # The file is JSON indented by 2, as Grafana exports it: a diff of it reads line by line.
    text = DASHBOARD_FILE.read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    # No .helmignore pattern drops it from a packaged chart.
    ignore = CHART / ".helmignore"
    patterns = [p for p in ignore.read_text().splitlines() if p and not p.startswith("#")]
    relative = DASHBOARD_FILE.relative_to(CHART)
    for pattern in patterns:
        for name in (str(relative), *relative.parts, f"{relative.parent}/"):
            assert not fnmatch.fnmatch(name, pattern), (pattern, name)
    # And were one to drop it, rendering stops instead of shipping an empty dashboard.
    copy = tmp_path / "liveops-fleet"
    shutil.copytree(CHART, copy)
    with (copy / ".helmignore").open("a") as file:
        file.write("dashboards/\n")
    with helm.Chart.load(copy) as chart, pytest.raises(helm.HelmRenderError, match="not in the"):
        chart.render(ENABLED, name=RELEASE, namespace="liveops")


def test_the_rows_hold_the_panels_the_runbook_needs_in_order(dashboard: Json) -> None:
    # Every row is open and holds nothing itself: a collapsed row nests its panels, which the
    # checks below would not see.
    for row in rows_of(dashboard):
        assert row["collapsed"] is False, row["title"]
        assert row["panels"] == [], row["title"]
    # Read top to bottom, left to right, each panel belongs to the row above it.
    layout: dict[str, list[str]] = {}
    current: list[str] = []
    placed = sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))
    assert placed[0]["type"] == "row", "a panel above the first row"
    for panel in placed:
        if panel["type"] == "row":
            current = layout.setdefault(panel["title"], [])
        else:
            current.append(panel["title"])
    assert layout == ROWS


def test_the_datasource_variable_exists_and_every_panel_and_query_reads_it(
    dashboard: Json,
) -> None:
    variables = variables_of(dashboard)
    datasource = variables["datasource"]
    assert datasource["type"] == "datasource"
    assert datasource["query"] == "prometheus"
    # The only data source of the dashboard is the one picked in the variable.
    chosen = {"type": "prometheus", "uid": "$datasource"}
    assert variables["processor"]["datasource"] == chosen
    for panel in panels_of(dashboard):
        assert panel["datasource"] == chosen, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == chosen, (panel["title"], target["refId"])


def test_the_processor_variable_lists_the_processors_of_an_exported_metric(
    dashboard: Json, exported: dict[str, frozenset[str]]
) -> None:
    variables = variables_of(dashboard)
    # Given every variable but the data source's, each with its stand-in
    queried = {name for name, v in variables.items() if v["type"] != "datasource"}
    assert queried == set(VARIABLE_STAND_INS) == {"processor"}
    processor = variables["processor"]
    assert processor["type"] == "query"
    assert processor["multi"] is True
    assert processor["includeAll"] is True
    # All is sent as the stand-in the queries are checked with
    assert processor["allValue"] == VARIABLE_STAND_INS["processor"]
    # Then its values come from a metric and label the code exports
    match = LABEL_VALUES.match(processor["query"]["query"])
    assert match is not None
    assert processor["definition"] == processor["query"]["query"]
    metric, label = match.groups()
    assert label == "processor"
    assert label in exported[metric]


def test_every_panel_says_in_one_sentence_what_it_shows_and_what_to_do(dashboard: Json) -> None:
    for panel in panels_of(dashboard):
        description = panel["description"]
        assert panel["title"], panel["id"]
        assert description.endswith("."), panel["title"]
        assert ". " not in description, f"{panel['title']}: more than one sentence"
        # What to do: a command, a setting or a place to look, as the runbook says it.
        action = re.search(r"\b(check|look|fix|run|scale|raise|list)\b", description)
        assert action, f"{panel['title']}: says nothing to do"


def test_panel_ids_are_unique(dashboard: Json) -> None:
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(set(ids)) == len(ids)


def test_no_two_panels_overlap_on_the_grid(dashboard: Json) -> None:
    grid = [(panel["title"], panel["gridPos"]) for panel in dashboard["panels"]]
    for title, position in grid:
        assert set(position) == {"h", "w", "x", "y"}, title
        assert position["w"] > 0 and position["h"] > 0, title
        assert position["x"] >= 0 and position["x"] + position["w"] <= GRID_COLUMNS, title
        assert position["y"] >= 0, title
    for i, (title, position) in enumerate(grid):
        for other, other_position in grid[i + 1 :]:
            assert not overlap(position, other_position), (title, other)
    # The check can fail: a panel one column into its neighbour, or one row into the next row.
    left = {"x": 0, "y": 1, "w": 12, "h": 8}
    assert overlap(left, {"x": 11, "y": 1, "w": 13, "h": 8})
    assert overlap(left, {"x": 0, "y": 8, "w": 24, "h": 1})
    assert not overlap(left, {"x": 12, "y": 1, "w": 12, "h": 8})
    assert not overlap(left, {"x": 0, "y": 9, "w": 24, "h": 1})


def test_every_query_parses_as_promql_once_grafana_fills_in_the_variables(
    dashboard: Json,
) -> None:
    for title, target in queries_of(dashboard):
        expr = with_stand_ins(target["expr"])
        assert "$" not in expr, (title, expr)
        try:
            parsed = promql_parser.parse(expr)
        except ValueError as exc:
            pytest.fail(f"{title}: {exc}\n{expr}")
        # A quantile of buckets summed without le is no quantile: keep le in every sum.
        for node in nodes_of(parsed):
            if isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
                for inner in nodes_of(node):
                    if isinstance(inner, promql_parser.AggregateExpr):
                        assert inner.modifier is not None, title
                        assert "le" in inner.modifier.labels, title
    # The stand-ins can fail: a variable the dashboard does not have is refused.
    with pytest.raises(KeyError, match="procesor"):
        with_stand_ins('sum(liveops_consumer_lag{processor=~"$procesor"})')
    assert with_stand_ins("rate(liveops_outcomes_total[${__rate_interval}])") == (
        "rate(liveops_outcomes_total[5m])"
    )


def test_every_metric_and_label_a_query_uses_is_exported_by_the_code(
    dashboard: Json, exported: dict[str, frozenset[str]]
) -> None:
    """A panel on a metric or label the code does not export stays empty, silently."""
    for title, target in queries_of(dashboard):
        expr = promql_parser.parse(with_stand_ins(target["expr"]))
        assert_reads_only_exported(expr, exported, title)


def test_every_metric_labelled_by_processor_is_selected_by_the_processor_variable(
    dashboard: Json, exported: dict[str, frozenset[str]]
) -> None:
    """Picking processors in the variable narrows every panel that can be narrowed."""
    narrowed = 0
    for title, target in queries_of(dashboard):
        selectors = selectors_of(promql_parser.parse(with_stand_ins(target["expr"])))
        labelled = [s for s in selectors if s.name and "processor" in exported[s.name]]
        for selector in labelled:
            matchers = [str(m) for m in selector.matchers.matchers]
            assert f'processor=~"{VARIABLE_STAND_INS["processor"]}"' in matchers, (title, matchers)
        # Each of those matchers is the variable, not a regex typed in
        assert target["expr"].count(PROCESSOR_MATCHER) == len(labelled), title
        narrowed += len(labelled)
    assert narrowed > 0


def test_every_label_a_legend_shows_is_one_the_query_keeps(dashboard: Json) -> None:
    for title, target in queries_of(dashboard):
        expr = promql_parser.parse(with_stand_ins(target["expr"]))
        kept = {label for labels, _ in groupings_of(expr) for label in labels} - {"le"}
        shown = set(LEGEND_LABEL.findall(target["legendFormat"]))
        assert shown, f"{title}: a legend without labels names every series alike"
        assert shown <= kept, f"{title}: the legend shows {shown - kept}, always empty"


def test_every_metric_of_the_runbook_table_has_a_panel(dashboard: Json) -> None:
    runbook = runbook_metrics()
    assert {"liveops_consumer_lag", "liveops_batch_size"} <= runbook
    read = {
        selector.name
        for _, target in queries_of(dashboard)
        for selector in selectors_of(promql_parser.parse(with_stand_ins(target["expr"])))
        if selector.name is not None
    }
    families = read | {HISTOGRAM_SUFFIX.sub("", name) for name in read}
    assert runbook - families == set()


def test_helm_lint_is_clean_with_dashboards_enabled() -> None:
    values = {"dashboards": {"enabled": True, "annotations": {"grafana_folder": "liveops"}}}
    assert_lint_clean(values)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"dashboards": {"enable": True}}, "'enable' not allowed"),
        ({"dashboards": {"enabled": "true"}}, "/dashboards/enabled"),
        (
            {"dashboards": {"labels": {"grafana_dashboard": 1}}},
            "/dashboards/labels/grafana_dashboard",
        ),
        (
            {"dashboards": {"annotations": {"grafana_folder": True}}},
            "/dashboards/annotations/grafana_folder",
        ),
        ({"dashboards": {"labels": ["grafana_dashboard"]}}, "/dashboards/labels"),
        ({"dashboard": {"enabled": True}}, "'dashboard' not allowed"),
    ],
)
def test_a_bad_dashboards_value_is_refused_by_the_values_schema(
    override: dict[str, Any], named: str
) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(named)):
        render(override)
