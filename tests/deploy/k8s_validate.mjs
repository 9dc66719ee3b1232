// Offline validation of deploy/k8s/*.yaml: every document is checked against
// the Kubernetes OpenAPI schema bundled in the kubernetes-models package (no
// cluster, no network), then against this project's own rules (probes on the
// OIP health routes, preStop drain within the grace period, resources,
// Prometheus annotations, selectors that match).
// Usage: node tests/deploy/k8s_validate.mjs deploy/k8s
import fs from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Service } from "kubernetes-models/v1/Service";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { parse } from "yaml";

const models = {
  "apps/v1/Deployment": Deployment,
  "v1/Service": Service,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "v1/ConfigMap": ConfigMap,
};
const dir = process.argv[2] || "deploy/k8s";
let failed = 0, passed = 0;
const check = (name, ok, detail = "") => {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok || !detail ? "" : ": " + detail}`);
  ok ? passed++ : failed++;
};
const objs = {}, hpas = [];
for (const f of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
  if (f === "kustomization.yaml") continue;
  for (const doc of parseAllDocuments(fs.readFileSync(path.join(dir, f), "utf8"))) {
    if (doc.errors.length) { check(`${f}: YAML`, false, doc.errors[0].message); continue; }
    const o = doc.toJSON();
    if (!o) continue;
    const key = `${o.apiVersion}/${o.kind}`;
    const M = models[key];
    if (!M) { check(`${f}: ${key} known`, false, "no schema for this kind"); continue; }
    try { new M(o).validate(); check(`${f}: ${key} ${o.metadata.name} matches the schema`, true); }
    catch (e) { check(`${f}: ${key} ${o.metadata?.name} matches the schema`, false, e.message.slice(0, 400)); }
    objs[o.kind] = o;
    if (o.kind === "HorizontalPodAutoscaler") hpas.push(o);
  }
}
const d = objs.Deployment, pod = d?.spec?.template?.spec, c = pod?.containers?.[0];
if (c) {
  check("startupProbe on /v2/health/ready", c.startupProbe?.httpGet?.path === "/v2/health/ready");
  check("readinessProbe on /v2/health/ready", c.readinessProbe?.httpGet?.path === "/v2/health/ready");
  check("livenessProbe on /v2/health/live", c.livenessProbe?.httpGet?.path === "/v2/health/live");
  check("resources: requests and limits for cpu and memory",
    !!(c.resources?.requests?.cpu && c.resources?.requests?.memory && c.resources?.limits?.cpu && c.resources?.limits?.memory));
  const pre = c.lifecycle?.preStop;
  const preS = pre?.sleep?.seconds ?? Number(pre?.exec?.command?.find((x) => /^\d+$/.test(x)) ?? NaN);
  const drainEnv = c.env?.find((e) => e.name === "INSTCALD_DRAIN_TIMEOUT_S");
  const drain = Number(drainEnv?.value ?? 60);
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  check("preStop pause present", Number.isFinite(preS) && preS > 0);
  check(`terminationGracePeriodSeconds (${grace}) > preStop (${preS}) + drain_timeout_s (${drain})`, grace > preS + drain);
  const ann = d.spec.template.metadata?.annotations ?? {};
  check("prometheus scrape annotations", ann["prometheus.io/scrape"] === "true" && !!ann["prometheus.io/port"]);
  check("runs as non-root", pod.securityContext?.runAsNonRoot === true);
  const labels = d.spec.template.metadata.labels;
  const matches = (sel) => Object.entries(sel ?? {}).every(([k, v]) => labels[k] === v);
  check("Service selects the pods", !!objs.Service && matches(objs.Service.spec.selector));
  check("PDB selects the pods", !!objs.PodDisruptionBudget && matches(objs.PodDisruptionBudget.spec.selector.matchLabels));
  for (const h of hpas) check(`HPA ${h.metadata.name} targets the Deployment`, h.spec?.scaleTargetRef?.name === d.metadata.name);
  // An HPA on a pods metric needs an adapter rule that serves that name.
  const adapter = objs.ConfigMap?.data?.["config.yaml"];
  const served = adapter ? (parse(adapter).rules ?? []).map((r) => r.name?.as) : [];
  for (const h of hpas)
    for (const m of h.spec?.metrics ?? [])
      if (m.type === "Pods")
        check(`HPA ${h.metadata.name}: the adapter rule serves ${m.pods.metric.name}`, served.includes(m.pods.metric.name), `served: ${served}`);
  const port = c.ports?.find((p) => p.name === "http");
  check("Service targets the container port", !!port && [port.name, port.containerPort].includes(objs.Service?.spec?.ports?.[0]?.targetPort));
} else {
  check("a Deployment with a container", false);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
