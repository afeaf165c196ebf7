"""The Helm chart in deploy/helm/conclave, checked offline (docs/deploy.md).

Real Helm renders and lints it (helm-python-sdk embeds Helm v4; no binary, no cluster, no network).
Every rendered object is validated against the Kubernetes OpenAPI schemas (kubernetes-validate,
strict: unknown fields fail), or, for KEDA's ScaledObject and the Prometheus Operator's
ServiceMonitor, against their CRDs' OpenAPI v3 schemas shipped in deploy/helm/crds (jsonschema,
with unknown fields failing as the API server's strict field validation makes them), or, for the
PrometheusRule, by Prometheus's own `promtool check rules` (strict: unknown rule fields fail). The other
tests check what the deployment needs: one worker and one ScaledObject per agent role, limits and
non-root on every container, probes, the external-service switches, the network policies, and
that bad values are refused with a message naming the key.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "deploy" / "helm" / "conclave"
CRD_DIR = REPO_ROOT / "deploy" / "helm" / "crds"
CI_VALUES = {path.stem: path for path in sorted((CHART_DIR / "ci").glob("*.yaml"))}
KUBERNETES_VERSION = "1.30.0"
RELEASE = "conclave"
NAMESPACE = "conclave"
FULLNAME = "conclave"  # the release name contains the chart name, so it is not repeated
ROLES = ["planner", "retriever", "reasoner", "validator", "responder"]
CONFIG_PATH = "/etc/conclave/conclave.yaml"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "conclave-dashboard.json"
ALERT_RULES = REPO_ROOT / "deploy" / "prometheus" / "conclave-alerts.yaml"

# ---------------------------------------------------------------------------------------------
# Rendering


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


def ci_values(name: str) -> dict[str, Any]:
    return yaml.safe_load(CI_VALUES[name].read_text())


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A deep merge, as Helm merges several values files (lists are replaced)."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def in_chart(chart: helm.Chart, **overrides: Any) -> list[dict[str, Any]]:
    return render(chart, merged(ci_values("in-chart-values"), overrides))


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = find(objects, kind, name)
    names = [o["metadata"]["name"] for o in find(objects, kind)]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)} among {names}"
    return matches[0]


def conclave_yaml(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return yaml.safe_load(one(objects, "ConfigMap", f"{FULLNAME}-config")["data"]["conclave.yaml"])


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def volume(workload: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in pod_spec(workload)["volumes"] if v["name"] == name)


def component(obj: dict[str, Any]) -> str | None:
    return obj["metadata"]["labels"].get("app.kubernetes.io/component")


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    matches = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    assert len(matches) == 1, f"{workload['metadata']['name']} has no container {name}"
    return matches[0]


# ---------------------------------------------------------------------------------------------
# Schemas


def strict_crd_schema(schema: Any) -> Any:
    """A CRD's structural schema, closed where the API server prunes or (strict) rejects fields.

    An object schema with `properties` and no `additionalProperties` accepts nothing else, unless it
    says x-kubernetes-preserve-unknown-fields. `metadata` (type object, no properties) stays open.
    """
    if isinstance(schema, list):
        return [strict_crd_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict_crd_schema(value) for key, value in schema.items()}
    if ("properties" in result and "additionalProperties" not in result
            and not result.get("x-kubernetes-preserve-unknown-fields")):
        result["additionalProperties"] = False
    return result


def load_crd_validators() -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    validators = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = strict_crd_schema(version["schema"]["openAPIV3Schema"])
            validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            validator_class.check_schema(schema)
            validators[(f"{group}/{version['name']}", kind)] = validator_class(schema)
    return validators


CRD_VALIDATORS = load_crd_validators()


class PromtoolError(Exception):
    """promtool refused a PrometheusRule's rules."""


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's prometheus package (make setup)")
    return path


def validate_prometheus_rule(obj: dict[str, Any]) -> None:
    """A PrometheusRule: the envelope the CRD allows, and its groups as Prometheus's own rule-file
    check reads them (promtool parses strictly: an unknown field or bad PromQL fails)."""
    assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}, f"PrometheusRule fields: {sorted(obj)}"
    assert set(obj["spec"]) == {"groups"}, f"PrometheusRule spec fields: {sorted(obj['spec'])}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as rules:
        yaml.safe_dump(obj["spec"], rules)
        rules.flush()
        check = subprocess.run([promtool(), "check", "rules", rules.name], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        raise PromtoolError(check.stdout + check.stderr)


def validate(obj: dict[str, Any]) -> str:
    """Validates one object; returns which schema did. Raises on an invalid object."""
    key = (obj["apiVersion"], obj["kind"])
    if key == ("monitoring.coreos.com/v1", "PrometheusRule"):
        validate_prometheus_rule(obj)
        return "promtool"
    if key in CRD_VALIDATORS:
        CRD_VALIDATORS[key].validate(obj)
        return f"CRD {key[0]}"
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    return f"Kubernetes {KUBERNETES_VERSION}"


def describe(error: Exception) -> str:
    if isinstance(error, jsonschema.ValidationError):
        return f"{error.message} at {'/'.join(str(p) for p in error.absolute_path)}"
    return getattr(error, "message", str(error))


# ---------------------------------------------------------------------------------------------
# Lint and schemas


@pytest.mark.parametrize("values_file", sorted(CI_VALUES))
def test_helm_lint_passes_in_strict_mode(values_file: str) -> None:
    report = helm.lint(CHART_DIR, ci_values(values_file), strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
    assert report["total_charts_linted"] == 1
    assert not problems and not report["errors"], f"helm lint ({values_file}): {problems or report['errors']}"


def test_helm_lint_reports_values_that_break_the_schema() -> None:
    report = helm.lint(CHART_DIR, merged(ci_values("in-chart-values"), {"gateway": {"replicas": "two"}}),
                       strict=True, kube_version=f"v{KUBERNETES_VERSION}")
    errors = [m["error"] for m in report["messages"] if m["severity"] == 3]
    assert any("/gateway/replicas" in e for e in errors), report


def test_shipped_crds_are_the_upstream_kinds() -> None:
    assert set(CRD_VALIDATORS) == {("keda.sh/v1alpha1", "ScaledObject"),
                                   ("monitoring.coreos.com/v1", "ServiceMonitor")}


@pytest.mark.parametrize("values_file", sorted(CI_VALUES))
def test_every_rendered_object_is_valid_against_its_schema(chart: helm.Chart, values_file: str) -> None:
    objects = render(chart, ci_values(values_file))
    failures = []
    checked: dict[str, set[str]] = {}
    for obj in objects:
        try:
            checked.setdefault(validate(obj), set()).add(obj["kind"])
        except Exception as error:  # noqa: BLE001 - every failure is reported, with its object
            failures.append(f"{obj['kind']} {obj['metadata']['name']}: {describe(error)}")
    assert not failures, "invalid objects:\n" + "\n".join(failures)
    # Both kinds of schema were used: the CRD-backed objects are rendered in the CI values.
    by_crd = checked["CRD keda.sh/v1alpha1"] | checked["CRD monitoring.coreos.com/v1"]
    assert {"ScaledObject", "ServiceMonitor"} <= by_crd
    if values_file == "in-chart-values":
        assert checked["promtool"] == {"PrometheusRule"}
    assert {"Deployment", "Service", "NetworkPolicy", "ConfigMap"} <= checked[f"Kubernetes {KUBERNETES_VERSION}"]


def test_validators_reject_unknown_and_mistyped_fields(chart: helm.Chart) -> None:
    objects = in_chart(chart)
    scaled = copy.deepcopy(one(objects, "ScaledObject", f"{FULLNAME}-worker-planner"))
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 10  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'string'"):
        validate(scaled)
    scaled = copy.deepcopy(one(objects, "ScaledObject", f"{FULLNAME}-worker-planner"))
    scaled["spec"]["maxReplicas"] = 4  # HPA's spelling, not KEDA's
    with pytest.raises(jsonschema.ValidationError, match="maxReplicas"):
        validate(scaled)
    monitor = copy.deepcopy(one(objects, "ServiceMonitor", f"{FULLNAME}-gateway"))
    monitor["spec"]["endpoints"][0]["scheme"] = "grpc"
    with pytest.raises(jsonschema.ValidationError, match="grpc"):
        validate(monitor)
    deployment = copy.deepcopy(one(objects, "Deployment", f"{FULLNAME}-gateway"))
    container(deployment, "gateway")["livenessProbe"]["httpGet"]["paht"] = "/healthz"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    rule = copy.deepcopy(one(objects, "PrometheusRule", FULLNAME))
    rule["spec"]["groups"][0]["rules"][0]["severity"] = "critical"  # belongs under labels
    with pytest.raises(PromtoolError, match="severity"):
        validate(rule)
    rule = copy.deepcopy(one(objects, "PrometheusRule", FULLNAME))
    rule["spec"]["groups"][0]["rules"][0]["expr"] = "rate(conclave_http_requests_total[5m]"
    with pytest.raises(PromtoolError, match="parse error"):
        validate(rule)


# ---------------------------------------------------------------------------------------------
# Workers and KEDA


def test_one_worker_deployment_and_scaled_object_per_role(chart: helm.Chart) -> None:
    objects = in_chart(chart)
    workers = [d for d in find(objects, "Deployment") if component(d) == "worker"]
    assert sorted(d["metadata"]["name"] for d in workers) == sorted(f"{FULLNAME}-worker-{r}" for r in ROLES)
    assert len(find(objects, "ScaledObject")) == len(ROLES)
    for role in ROLES:
        name = f"{FULLNAME}-worker-{role}"
        worker = one(objects, "Deployment", name)
        c = container(worker, "worker")
        assert c["command"] == ["conclave"]
        assert c["args"] == ["worker", "--role", role, "--port", "9090", "--config", CONFIG_PATH]
        assert "replicas" not in worker["spec"], "KEDA owns the replica count"
        scaled = one(objects, "ScaledObject", name)
        assert scaled["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 10)
        [trigger] = scaled["spec"]["triggers"]
        assert trigger["type"] == "nats-jetstream"
        assert trigger["metadata"] == {
            "natsServerMonitoringEndpoint": f"{FULLNAME}-nats.{NAMESPACE}.svc.cluster.local:8222",
            "account": "$G",
            "stream": "CONCLAVE_STEPS",
            "consumer": f"worker-{role}",
            "lagThreshold": "10",
            "activationLagThreshold": "0",
            "useHttps": "false",
        }
        assert scaled["metadata"]["annotations"]["conclave.io/jetstream-subject"] == f"conclave.steps.{role}"
        assert worker["metadata"]["annotations"]["conclave.io/jetstream-subject"] == f"conclave.steps.{role}"
        assert worker["metadata"]["annotations"]["conclave.io/jetstream-consumer"] == f"worker-{role}"
        assert one(objects, "PodDisruptionBudget", name)["spec"]["maxUnavailable"] == 1


def test_role_overrides_and_external_nats_reach_the_scaled_objects(chart: helm.Chart) -> None:
    objects = render(chart, ci_values("external-values"))
    retriever = one(objects, "ScaledObject", f"{FULLNAME}-worker-retriever")
    planner = one(objects, "ScaledObject", f"{FULLNAME}-worker-planner")
    assert retriever["spec"]["maxReplicaCount"] == 30
    assert planner["spec"]["maxReplicaCount"] == 10
    for scaled in (retriever, planner):
        metadata = scaled["spec"]["triggers"][0]["metadata"]
        assert metadata["natsServerMonitoringEndpoint"] == "nats.messaging.svc.cluster.local:8222"
        assert metadata["lagThreshold"] == "25"
    responder = container(one(objects, "Deployment", f"{FULLNAME}-worker-responder"), "worker")
    assert responder["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}


def test_workers_without_keda_get_a_fixed_replica_count(chart: helm.Chart) -> None:
    objects = in_chart(chart, workers={"autoscaling": {"enabled": False}, "replicas": 3})
    assert not find(objects, "ScaledObject")
    assert {one(objects, "Deployment", f"{FULLNAME}-worker-{r}")["spec"]["replicas"] for r in ROLES} == {3}


# ---------------------------------------------------------------------------------------------
# Containers: resources, security, probes


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


@pytest.mark.parametrize("values_file", sorted(CI_VALUES))
def test_every_container_has_limits_and_runs_as_non_root(chart: helm.Chart, values_file: str) -> None:
    values = ci_values(values_file)
    # The model download's init container only exists with a URL; render it too.
    values = merged(values, {"inference": {"llama": {"model": {"downloadURL": "https://models.example/m.gguf"}}}})
    objects = render(chart, values)
    assert len(workloads(objects)) >= 6
    problems = []
    for workload in workloads(objects):
        spec = pod_spec(workload)
        pod_security = spec.get("securityContext", {})
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = f"{workload['kind']} {workload['metadata']['name']} container {c['name']}"
            for bound in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in c.get("resources", {}).get(bound, {}):
                        problems.append(f"{where}: no {bound}.{resource}")
            security = c.get("securityContext", {})
            if not security.get("runAsNonRoot", pod_security.get("runAsNonRoot")):
                problems.append(f"{where}: not runAsNonRoot")
            if security.get("runAsUser", pod_security.get("runAsUser", 0)) == 0:
                problems.append(f"{where}: runs as uid 0")
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if security.get("capabilities", {}).get("drop") != ["ALL"] or security["capabilities"].get("add"):
                problems.append(f"{where}: capabilities are not drop [ALL]")
            seccomp = security.get("seccompProfile", pod_security.get("seccompProfile", {}))
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is not RuntimeDefault")
            if security.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem is writable")
            tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
            if workload["kind"] == "Deployment" and not (tmp and "emptyDir" in volumes.get(tmp[0]["name"], {})):
                problems.append(f"{where}: no emptyDir on /tmp")
    assert not problems, "\n".join(problems)


def test_gateway_runs_serve_with_probes_and_config(chart: helm.Chart) -> None:
    objects = in_chart(chart)
    gateway = one(objects, "Deployment", f"{FULLNAME}-gateway")
    c = container(gateway, "gateway")
    assert c["command"] == ["conclave"] and c["args"] == ["serve", "--config", CONFIG_PATH]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/etc/conclave", "/tmp", "/opt/conclave/var"}
    password = [e for e in c["env"] if e["name"] == "CONCLAVE_STORAGE__PASSWORD"]
    assert password == [{"name": "CONCLAVE_STORAGE__PASSWORD", "valueFrom": {
        "secretKeyRef": {"name": f"{FULLNAME}-secrets", "key": "storage-password"}}}]
    service = one(objects, "Service", f"{FULLNAME}-gateway")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    monitor = one(objects, "ServiceMonitor", f"{FULLNAME}-gateway")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_extra_volumes_reach_every_conclave_pod(chart: helm.Chart) -> None:
    objects = in_chart(chart, extraVolumes=[{"name": "policy", "configMap": {"name": "my-policy"}}],
                       extraVolumeMounts=[{"name": "policy", "mountPath": "/etc/conclave-policy", "readOnly": True}])
    conclave_pods = [w for w in workloads(objects) if component(w) in ("gateway", "worker")]
    assert len(conclave_pods) == 1 + len(ROLES)
    for workload in conclave_pods:
        assert volume(workload, "policy") == {"name": "policy", "configMap": {"name": "my-policy"}}
        [c] = pod_spec(workload)["containers"]
        assert {"name": "policy", "mountPath": "/etc/conclave-policy", "readOnly": True} in c["volumeMounts"]
    assert "policy" not in {v["name"] for v in pod_spec(one(objects, "Deployment", f"{FULLNAME}-llama"))["volumes"]}


def test_workers_have_probes_and_metrics_on_9090(chart: helm.Chart) -> None:
    objects = in_chart(chart)
    for role in ROLES:
        c = container(one(objects, "Deployment", f"{FULLNAME}-worker-{role}"), "worker")
        assert c["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        service = one(objects, "Service", f"{FULLNAME}-worker-{role}")
        assert service["spec"]["clusterIP"] == "None" and service["spec"]["ports"][0]["port"] == 9090
    monitor = one(objects, "ServiceMonitor", f"{FULLNAME}-worker")
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert monitor["spec"]["targetLabels"] == ["conclave.io/role"]


def test_gateway_scales_on_cpu_and_keeps_one_pod_through_disruptions(chart: helm.Chart) -> None:
    objects = render(chart, ci_values("external-values"))
    gateway = one(objects, "Deployment", f"{FULLNAME}-gateway")
    assert "replicas" not in gateway["spec"], "the HPA owns the replica count"
    hpa = one(objects, "HorizontalPodAutoscaler", f"{FULLNAME}-gateway")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{FULLNAME}-gateway"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    assert one(objects, "PodDisruptionBudget", f"{FULLNAME}-gateway")["spec"]["minAvailable"] == 1
    fixed = in_chart(chart, gateway={"autoscaling": {"enabled": False}, "replicas": 4})
    assert one(fixed, "Deployment", f"{FULLNAME}-gateway")["spec"]["replicas"] == 4
    assert not find(fixed, "HorizontalPodAutoscaler", f"{FULLNAME}-gateway")


# ---------------------------------------------------------------------------------------------
# Configuration, inference and the external services

KNOWN_KEYS = yaml.safe_load((REPO_ROOT / "config" / "conclave.yaml").read_text())
# Keys of distributed mode, in case config/conclave.yaml (the embedded defaults) does not spell
# them out: storage's PostgreSQL settings and the messaging section.
DISTRIBUTED_KEYS = {"storage": {"driver", "url", "max_connections"}, "messaging": {"driver", "url"}}


def test_config_map_points_conclave_at_the_in_chart_services(chart: helm.Chart) -> None:
    config = conclave_yaml(in_chart(chart))
    assert config["server"] == {"host": "0.0.0.0", "port": 8080}
    assert config["storage"] == {"driver": "postgres", "max_connections": 4,
                                 "url": f"postgres://conclave@{FULLNAME}-postgresql:5432/conclave"}
    assert config["messaging"] == {"driver": "nats", "url": f"nats://{FULLNAME}-nats:4222"}
    assert config["inference"] == {"provider": "openai", "model": "default",
                                   "endpoint": f"http://{FULLNAME}-llama:8081/v1"}
    assert config["auth"]["hs256_key_file"] == "/etc/conclave/keys/hs256.key"
    assert config["audit"]["signing_key_file"] == "/etc/conclave/keys/audit-ed25519.key"
    # Every key is one Conclave knows: the embedded defaults' keys, or the distributed-mode ones.
    for section, keys in config.items():
        known = set(KNOWN_KEYS.get(section) or {}) | DISTRIBUTED_KEYS.get(section, set())
        assert known, f"unknown section {section}"
        assert set(keys) <= known, f"unknown keys in {section}: {set(keys) - known}"


def test_every_pod_at_full_scale_fits_in_postgres_connections(chart: helm.Chart) -> None:
    objects = in_chart(chart)
    pods = one(objects, "HorizontalPodAutoscaler", f"{FULLNAME}-gateway")["spec"]["maxReplicas"]
    pods += sum(o["spec"]["maxReplicaCount"] for o in find(objects, "ScaledObject"))
    per_pod = conclave_yaml(objects)["storage"]["max_connections"]
    args = container(one(objects, "StatefulSet", f"{FULLNAME}-postgresql"), "postgresql")["args"]
    limit = int(next(a for a in args if a.startswith("max_connections=")).split("=")[1])
    assert pods * per_pod <= limit - 3, f"{pods} pods x {per_pod} connections > max_connections {limit} - 3 reserved"


def test_key_files_come_from_the_secret(chart: helm.Chart) -> None:
    objects = in_chart(chart)
    secret = one(objects, "Secret", f"{FULLNAME}-secrets")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["storage-password"] == "ci-only-not-a-real-password"
    assert len(data["hs256-key"]) >= 32
    assert len(data["audit-signing-key"]) == 64 and int(data["audit-signing-key"], 16) >= 0
    projected = volume(one(objects, "Deployment", f"{FULLNAME}-gateway"), "config")
    sources = projected["projected"]["sources"]
    assert {"key": "hs256-key", "path": "keys/hs256.key"} in sources[1]["secret"]["items"]
    assert {"key": "audit-signing-key", "path": "keys/audit-ed25519.key"} in sources[1]["secret"]["items"]
    given = in_chart(chart, secret={"hs256Key": "k" * 40, "auditSigningKey": "ab" * 32})
    data = {k: base64.b64decode(v).decode() for k, v in one(given, "Secret", f"{FULLNAME}-secrets")["data"].items()}
    assert (data["hs256-key"], data["audit-signing-key"]) == ("k" * 40, "ab" * 32)


def test_llama_server_scales_on_its_queue_depth(chart: helm.Chart) -> None:
    objects = in_chart(chart, inference={"llama": {"contextSize": 4096, "parallelSlots": 2,
                                                   "model": {"file": "smollm2.gguf"},
                                                   "autoscaling": {"targetAverageValue": "3"}}})
    llama = one(objects, "Deployment", f"{FULLNAME}-llama")
    c = container(llama, "llama-server")
    assert c["image"] == "ghcr.io/ggml-org/llama.cpp:server"
    assert c["args"] == ["-m", "/models/smollm2.gguf", "--host", "0.0.0.0", "--port", "8081",
                         "-c", "4096", "-np", "2", "--metrics"]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in c["volumeMounts"]
    models = volume(llama, "models")
    assert models["persistentVolumeClaim"]["claimName"] == f"{FULLNAME}-llama-models"
    assert one(objects, "PersistentVolumeClaim", f"{FULLNAME}-llama-models")
    hpa = one(objects, "HorizontalPodAutoscaler", f"{FULLNAME}-llama")
    assert hpa["spec"]["metrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": "llamacpp_requests_deferred"},
        "target": {"type": "AverageValue", "averageValue": "3"}}}]
    assert one(objects, "Service", f"{FULLNAME}-llama")["spec"]["ports"][0]["port"] == 8081
    claimed = in_chart(chart, inference={"llama": {"model": {"existingClaim": "shared-models"}}})
    models = volume(one(claimed, "Deployment", f"{FULLNAME}-llama"), "models")
    assert models == {"name": "models", "persistentVolumeClaim": {"claimName": "shared-models"}}
    assert not find(claimed, "PersistentVolumeClaim")


def test_external_inference_endpoint_replaces_the_llama_server(chart: helm.Chart) -> None:
    endpoint = "https://llm.example.com/v1"
    objects = in_chart(chart, inference={"external": {"endpoint": endpoint, "model": "big-model"}})
    llama_objects = [o for o in objects if o["metadata"]["name"].startswith(f"{FULLNAME}-llama")]
    assert llama_objects == []
    assert conclave_yaml(objects)["inference"] == {"provider": "openai", "endpoint": endpoint, "model": "big-model"}
    gateway = container(one(objects, "Deployment", f"{FULLNAME}-gateway"), "gateway")
    assert "INFERENCE_API_KEY" not in {e["name"] for e in gateway["env"]}
    # With an API key: the Secret holds it, the pods get it, the config names the variable.
    keyed = in_chart(chart, inference={"external": {"endpoint": endpoint, "apiKeyFromSecret": True}},
                     secret={"inferenceApiKey": "sk-test"})
    assert conclave_yaml(keyed)["inference"]["api_key_env"] == "INFERENCE_API_KEY"
    env = container(one(keyed, "Deployment", f"{FULLNAME}-worker-planner"), "worker")["env"]
    assert {"name": "INFERENCE_API_KEY", "valueFrom": {"secretKeyRef": {
        "name": f"{FULLNAME}-secrets", "key": "inference-api-key"}}} in env
    assert "inference-api-key" in one(keyed, "Secret", f"{FULLNAME}-secrets")["data"]


def test_external_postgres_and_nats_replace_the_stateful_sets(chart: helm.Chart) -> None:
    inside = in_chart(chart)
    stateful = sorted(s["metadata"]["name"] for s in find(inside, "StatefulSet"))
    assert stateful == [f"{FULLNAME}-nats", f"{FULLNAME}-postgresql"]
    nats = container(one(inside, "StatefulSet", f"{FULLNAME}-nats"), "nats")
    assert "-js" in nats["args"]
    assert {p["name"]: p["containerPort"] for p in nats["ports"]} == {"client": 4222, "monitoring": 8222}
    objects = render(chart, ci_values("external-values"))
    assert not find(objects, "StatefulSet")
    assert not [o for o in objects if component(o) in ("postgresql", "nats")]
    config = conclave_yaml(objects)
    assert config["storage"] == {"driver": "postgres", "max_connections": 4,
                                 "url": "postgres://conclave@db.example.internal:5432/conclave"}
    assert config["messaging"] == {"driver": "nats", "url": "nats://nats.messaging.svc.cluster.local:4222"}
    # The existing Secret is used as it is: the chart creates none.
    assert not find(objects, "Secret")
    env = container(one(objects, "Deployment", f"{FULLNAME}-gateway"), "gateway")["env"]
    assert env[0]["valueFrom"]["secretKeyRef"] == {"name": "conclave-credentials", "key": "storage-password"}


# ---------------------------------------------------------------------------------------------
# Network policies, evaluated


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"the evaluator knows matchLabels only: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def peer_matches(peer: dict[str, Any], source: dict[str, Any], policy_namespace: str) -> bool:
    assert set(peer) <= {"podSelector", "namespaceSelector"}, f"unexpected peer {peer}"
    if "namespaceSelector" in peer:
        if not selector_matches(peer["namespaceSelector"], source["namespace_labels"]):
            return False
    elif source["namespace"] != policy_namespace:
        return False
    return selector_matches(peer.get("podSelector", {}), source["labels"])


def port_matches(rule_port: dict[str, Any], port: int, destination: dict[str, Any]) -> bool:
    wanted = rule_port["port"]
    if isinstance(wanted, str):  # a named port of the destination's containers
        return destination["ports"].get(wanted) == port
    return wanted == port


def allowed(policies: list[dict[str, Any]], source: dict[str, Any], destination: dict[str, Any], port: int) -> bool:
    selecting = [p for p in policies if selector_matches(p["spec"]["podSelector"], destination["labels"])]
    if not selecting:
        return True  # not isolated
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            peers_ok = "from" not in rule or any(peer_matches(p, source, NAMESPACE) for p in rule["from"])
            ports_ok = "ports" not in rule or any(port_matches(p, port, destination) for p in rule["ports"])
            if peers_ok and ports_ok:
                return True
    return False


def test_network_policies_allow_only_the_needed_flows(chart: helm.Chart) -> None:
    objects = in_chart(chart)
    policies = find(objects, "NetworkPolicy")

    def pod(workload: dict[str, Any]) -> dict[str, Any]:
        template = workload["spec"]["template"]
        ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        return {"labels": template["metadata"]["labels"], "ports": ports, "namespace": NAMESPACE,
                "namespace_labels": {"kubernetes.io/metadata.name": NAMESPACE}}

    def outsider(namespace: str) -> dict[str, Any]:
        return {"labels": {"app": "other"}, "namespace": namespace, "ports": {},
                "namespace_labels": {"kubernetes.io/metadata.name": namespace}}

    gateway = pod(one(objects, "Deployment", f"{FULLNAME}-gateway"))
    worker = pod(one(objects, "Deployment", f"{FULLNAME}-worker-reasoner"))
    llama = pod(one(objects, "Deployment", f"{FULLNAME}-llama"))
    postgres = pod(one(objects, "StatefulSet", f"{FULLNAME}-postgresql"))
    nats = pod(one(objects, "StatefulSet", f"{FULLNAME}-nats"))
    client, prometheus, keda = outsider("apps"), outsider("monitoring"), outsider("keda")
    neighbour = outsider(NAMESPACE)

    expectations = [
        (client, gateway, 8080, True),
        (neighbour, gateway, 8080, True),
        (prometheus, gateway, 8080, True),
        (client, gateway, 9090, False),
        (gateway, postgres, 5432, True),
        (worker, postgres, 5432, True),
        (neighbour, postgres, 5432, False),
        (gateway, nats, 4222, True),
        (worker, nats, 4222, True),
        (client, nats, 4222, False),
        (keda, nats, 8222, True),
        (prometheus, nats, 8222, False),
        (gateway, nats, 8222, False),
        (gateway, llama, 8081, True),
        (worker, llama, 8081, True),
        (prometheus, llama, 8081, True),
        (client, llama, 8081, False),
        (prometheus, worker, 9090, True),
        (gateway, worker, 9090, False),
        (client, worker, 9090, False),
    ]
    wrong = [f"{s['labels'].get('app.kubernetes.io/component', s['namespace'])} -> "
             f"{d['labels']['app.kubernetes.io/component']}:{port} should be {'allowed' if ok else 'denied'}"
             for s, d, port, ok in expectations if allowed(policies, s, d, port) != ok]
    assert not wrong, "\n".join(wrong)
    # Restricting the gateway's clients keeps Prometheus in.
    restricted = find(in_chart(chart, networkPolicy={"gatewayFrom": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}}]}), "NetworkPolicy")
    assert allowed(restricted, client, gateway, 8080)
    assert allowed(restricted, prometheus, gateway, 8080)
    assert not allowed(restricted, outsider("elsewhere"), gateway, 8080)


# ---------------------------------------------------------------------------------------------
# Values that must be refused


def test_missing_storage_password_is_refused_with_a_clear_message(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"secret\.storagePassword is required"):
        chart.render(None, name=RELEASE, namespace=NAMESPACE, is_install=True)
    # An existing Secret needs no password in the values.
    objects = render(chart, {"secret": {"existingSecret": "mine"}})
    assert not find(objects, "Secret")


@pytest.mark.parametrize(("override", "message"), [
    ({"gateway": {"replicas": "two"}}, r"/gateway/replicas': got string, want integer"),
    ({"gatewy": {"replicas": 2}}, r"additional properties 'gatewy' not allowed"),
    ({"workers": {"roles": [{"name": "summarizer"}]}}, r"/workers/roles/0/name"),
    ({"postgresql": {"enabled": False, "external": {"url": "postgres://conclave:hunter2@db:5432/conclave"}}},
     r"/postgresql/external/url"),
    ({"gateway": {"resources": {"limits": None}}}, r"/gateway/resources': missing property 'limits'"),  # null deletes
    ({"containerSecurityContext": {"allowPrivilegeEscalation": True}},
     r"/containerSecurityContext/allowPrivilegeEscalation"),
    ({"secret": {"auditSigningKey": "not-hex"}}, r"/secret/auditSigningKey"),
    ({"prometheus": {"rules": {"enabled": "yes"}}}, r"/prometheus/rules/enabled': got string, want boolean"),
    ({"grafana": {"dashbaord": {"enabled": True}}}, r"additional properties 'dashbaord' not allowed"),
])
def test_schema_refuses_bad_values(chart: helm.Chart, override: dict[str, Any], message: str) -> None:
    values = merged(ci_values("in-chart-values"), override)
    with pytest.raises(helm.HelmValuesError, match=message):
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


@pytest.mark.parametrize(("override", "message"), [
    ({"postgresql": {"external": {"url": "postgres://conclave@db:5432/conclave"}}},
     r"postgresql\.external\.url is set while postgresql\.enabled is true"),
    ({"nats": {"enabled": False}}, r"nats\.enabled is false and nats\.external\.url is empty"),
    ({"nats": {"enabled": False, "external": {"url": "nats://nats:4222"}}}, r"nats\.external\.monitoringEndpoint"),
    ({"inference": {"llama": {"model": {"persistence": {"enabled": False}}}}}, r"downloadURL is required"),
    ({"secret": {"hs256Key": "short"}}, r"/secret/hs256Key"),
])
def test_inconsistent_values_are_refused(chart: helm.Chart, override: dict[str, Any], message: str) -> None:
    values = merged(ci_values("in-chart-values"), override)
    with pytest.raises((helm.HelmRenderError, helm.HelmValuesError), match=message):
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def test_values_file_and_schema_agree() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(defaults)
    assert defaults["metrics"]["serviceMonitor"]["enabled"] is False, "ServiceMonitor needs the CRD: off by default"
    assert defaults["prometheus"]["rules"]["enabled"] is False, "PrometheusRule needs the CRD: off by default"
    assert defaults["grafana"]["dashboard"]["enabled"] is False
    assert defaults["secret"]["storagePassword"] == "", "no default password in the chart"


CONCLAVE_BIN = os.environ.get("CONCLAVE_BIN") or str(REPO_ROOT / ".build" / "debug" / "conclave")


@pytest.mark.parametrize("values", ["in-chart-values", "external-values"])
def test_the_chart_configuration_passes_conclaves_own_check(chart: helm.Chart, values: str, tmp_path: Path) -> None:
    """The conclave.yaml the chart renders is one the binary accepts: every key known, every value
    in range (`conclave config check`, the same validation `serve` and `worker` run at start)."""
    if not os.access(CONCLAVE_BIN, os.X_OK):
        pytest.fail(f"{CONCLAVE_BIN} is not built (make build)")
    config = tmp_path / "conclave.yaml"
    config.write_text(yaml.safe_dump(conclave_yaml(render(chart, ci_values(values)))))
    check = subprocess.run([CONCLAVE_BIN, "config", "check", str(config)], cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "OK" in check.stdout
    # And the check is not a formality: a key the binary does not know fails it.
    broken = yaml.safe_load(config.read_text())
    broken["messaging"]["urls"] = broken["messaging"].pop("url")
    config.write_text(yaml.safe_dump(broken))
    rejected = subprocess.run([CONCLAVE_BIN, "config", "check", str(config)], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=60)
    assert rejected.returncode != 0
    assert "messaging.urls" in rejected.stdout + rejected.stderr


# ---------------------------------------------------------------------------------------------
# Observability: the alert rules and the Grafana dashboard (docs/observability.md)


@pytest.mark.parametrize("original", [DASHBOARD, ALERT_RULES], ids=lambda p: p.name)
def test_the_charts_copies_of_the_dashboard_and_rules_are_identical_to_deploy(original: Path) -> None:
    """The chart carries copies (a packaged or copied chart needs no file outside it); they must
    not drift from the files in deploy/, which docs/observability.md and the promtool tests use."""
    chart_copy = CHART_DIR / "files" / original.name
    assert chart_copy.read_bytes() == original.read_bytes(), (
        f"{chart_copy.relative_to(REPO_ROOT)} differs from {original.relative_to(REPO_ROOT)}: "
        f"cp {original.relative_to(REPO_ROOT)} {chart_copy.relative_to(REPO_ROOT)}")


def test_prometheus_rule_carries_the_alert_rules_unchanged(chart: helm.Chart) -> None:
    objects = in_chart(chart)
    rule = one(objects, "PrometheusRule", FULLNAME)
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # The same groups as the rule file, Prometheus's own templates ({{ $labels.job }}) untouched by Helm.
    assert rule["spec"]["groups"] == yaml.safe_load(ALERT_RULES.read_text())["groups"]
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    assert {"ConclaveHighErrorRate", "ConclaveHighLatency", "ConclaveNoReadyInferenceReplica",
            "ConclaveAuditChainBroken", "ConclaveAuditWriteErrors"} <= set(alerts)
    assert "{{ $labels.model }}" in alerts["ConclaveNoReadyInferenceReplica"]["annotations"]["summary"]
    # Off: no PrometheusRule.
    assert not find(in_chart(chart, prometheus={"rules": {"enabled": False}}), "PrometheusRule")


def test_dashboard_config_map_is_labelled_for_the_grafana_sidecar(chart: helm.Chart) -> None:
    objects = in_chart(chart)
    config_map = one(objects, "ConfigMap", f"{FULLNAME}-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Conclave"}
    assert list(config_map["data"]) == ["conclave-dashboard.json"]
    # The JSON arrives whole, legend templates ({{route}}) untouched by Helm.
    assert json.loads(config_map["data"]["conclave-dashboard.json"]) == json.loads(DASHBOARD.read_text())
    # A sidecar that watches another label value; more labels pass through.
    relabelled = one(in_chart(chart, grafana={"dashboard": {"labels": {"grafana_dashboard": "conclave", "team": "ml"}}}),
                     "ConfigMap", f"{FULLNAME}-dashboard")
    assert relabelled["metadata"]["labels"]["grafana_dashboard"] == "conclave"
    assert relabelled["metadata"]["labels"]["team"] == "ml"
    # Off: no ConfigMap.
    assert not find(in_chart(chart, grafana={"dashboard": {"enabled": False}}), "ConfigMap", f"{FULLNAME}-dashboard")


@pytest.mark.parametrize("mesh", ["none", "linkerd", "istio"])
def test_mesh_sidecar_injection_marks_the_gateway_worker_and_llama_pods(chart: helm.Chart, mesh: str) -> None:
    objects = in_chart(chart, mesh={"inject": mesh})
    pods = [o for o in find(objects, "Deployment") if component(o) in ("gateway", "worker", "llama")]
    assert {component(o) for o in pods} == {"gateway", "worker", "llama"}
    for workload in pods:
        metadata = workload["spec"]["template"]["metadata"]
        labels, annotations = metadata.get("labels", {}), metadata.get("annotations") or {}
        assert (labels.get("sidecar.istio.io/inject") == "true") == (mesh == "istio"), workload["metadata"]["name"]
        assert (annotations.get("linkerd.io/inject") == "enabled") == (mesh == "linkerd"), workload["metadata"]["name"]
        # The selector stays the same whatever the mesh (a Deployment's selector is immutable).
        assert "sidecar.istio.io/inject" not in workload["spec"]["selector"]["matchLabels"]
    # The in-chart PostgreSQL and NATS stay outside the mesh.
    for workload in find(objects, "StatefulSet"):
        template = workload["spec"]["template"]["metadata"]
        assert "sidecar.istio.io/inject" not in template.get("labels", {})
        assert "linkerd.io/inject" not in (template.get("annotations") or {})


def test_an_unknown_mesh_is_refused(chart: helm.Chart) -> None:
    with pytest.raises(Exception, match="mesh"):
        in_chart(chart, mesh={"inject": "consul"})
