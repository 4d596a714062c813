// deploy/kubernetes rendered with kustomize and checked offline (tools/deploy/validate.ts): Kubernetes API
// schemas, KServe's, probes on served routes and ports, grace period, hardening; planted faults must fail.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { ENVIRONMENT, SHUTDOWN_MARGIN_MS } from '../../src/http/config.js';
import { DEPLOY_DIR, kustomizeCommand, ROOT, serviceFacts, validateDeployment, type Report } from '../../tools/deploy/validate.js';

const kustomize = kustomizeCommand();
// In CI a missing kustomize fails (.ci/run installs Debian's kubernetes-client); elsewhere it skips.
const skip = !kustomize && !process.env.CI ? 'no kubectl or kustomize here (Debian: apt-get install kubernetes-client)' : false;

type Obj = Record<string, any>;

let full: Promise<Report> | undefined;
const report = () => (full ??= validateDeployment(DEPLOY_DIR, { kustomize }));
const find = (objs: Obj[], kind: string, name?: string) => objs.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));

const copies: string[] = [];
after(() => { for (const c of copies) rmSync(c, { recursive: true, force: true }); });

/** A copy of deploy/kubernetes with `from` replaced by `to` (once) in `file`. */
function plant(file: string, from: string | RegExp, to: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'camserve-deploy-'));
  copies.push(dir);
  cpSync(DEPLOY_DIR, dir, { recursive: true });
  const f = path.join(dir, file);
  const text = readFileSync(f, 'utf8');
  const changed = text.replace(from, to);
  assert.notEqual(changed, text, `${file}: ${String(from)} not found`);
  writeFileSync(f, changed);
  return dir;
}

test('kustomize is there to render the manifests', { skip }, () => {
  assert.ok(kustomize, 'install kubectl (Debian: kubernetes-client) or kustomize; .ci/run does');
});

test('every kustomization renders and every object passes the Kubernetes / KServe schemas and the service checks', { skip }, async () => {
  const r = await report();
  assert.deepEqual(Object.keys(r.rendered).sort(), ['base', 'kserve', 'overlays/example', 'overlays/models-from-image']);
  assert.deepEqual(r.problems, []);
});

test('the example overlay: namespace, image, Deployment, Service, HPA, PDB, models claim, ServiceMonitor, Redis', { skip }, async () => {
  const objs = (await report()).rendered['overlays/example'];
  const kinds = objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
  assert.deepEqual(kinds, ['Deployment/camserve', 'Deployment/camserve-redis', 'HorizontalPodAutoscaler/camserve', 'Namespace/camserve',
    'NetworkPolicy/camserve-redis', 'PersistentVolumeClaim/camserve-models', 'PodDisruptionBudget/camserve', 'Secret/camserve-redis',
    'Service/camserve', 'Service/camserve-redis', 'ServiceMonitor/camserve']);
  for (const o of objs) if (o.kind !== 'Namespace') assert.equal(o.metadata.namespace, 'camserve', `${o.kind}/${o.metadata.name}`);
  assert.equal(find(objs, 'Namespace')!.metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
  const pod = find(objs, 'Deployment', 'camserve')!.spec.template.spec;
  const c = pod.containers[0];
  assert.equal(c.image, 'registry.example.com/camserve:0.1.0');
  assert.deepEqual(c.env.find((e: Obj) => e.name === 'REDIS_URL').valueFrom.secretKeyRef, { name: 'camserve-redis', key: 'REDIS_URL', optional: true });
  assert.deepEqual(pod.volumes.find((v: Obj) => v.name === 'models').persistentVolumeClaim, { claimName: 'camserve-models', readOnly: true });
  assert.deepEqual(c.volumeMounts.find((m: Obj) => m.name === 'models'), { name: 'models', mountPath: '/models', readOnly: true });
  const hpa = find(objs, 'HorizontalPodAutoscaler')!;
  assert.equal(hpa.apiVersion, 'autoscaling/v2');
  assert.deepEqual(hpa.spec.metrics.map((m: Obj) => m.resource.name), ['cpu']);
  assert.match(readFileSync(path.join(DEPLOY_DIR, 'base/hpa.yaml'), 'utf8'), /camserve_queue_depth/, 'the queue-depth metric is documented');
  assert.equal(find(objs, 'ServiceMonitor')!.apiVersion, 'monitoring.coreos.com/v1');
  assert.equal(find(objs, 'PodDisruptionBudget')!.spec.minAvailable, 1);
});

test('models-from-image: an init container copies the models into an emptyDir; no claim', { skip }, async () => {
  const objs = (await report()).rendered['overlays/models-from-image'];
  assert.equal(find(objs, 'PersistentVolumeClaim'), undefined);
  const pod = find(objs, 'Deployment')!.spec.template.spec;
  assert.deepEqual(pod.volumes.find((v: Obj) => v.name === 'models'), { name: 'models', emptyDir: { sizeLimit: '2Gi' } });
  const init = pod.initContainers[0];
  assert.equal(init.image, 'registry.example.com/camserve-models:2026-11-29');
  assert.deepEqual(init.volumeMounts, [{ name: 'models', mountPath: '/shared' }]);
  assert.deepEqual(init.command, ['cp', '-R', '/models/.', '/shared/']);
});

test('KServe: a custom predictor with the model at /mnt/models through STORAGE_URI', { skip }, async () => {
  const [isvc] = (await report()).rendered.kserve;
  assert.equal(isvc.apiVersion, 'serving.kserve.io/v1beta1');
  assert.equal(isvc.kind, 'InferenceService');
  const c = isvc.spec.predictor.containers[0];
  assert.equal(c.name, 'kserve-container');
  const env = Object.fromEntries(c.env.map((e: Obj) => [e.name, e.value]));
  assert.match(env.STORAGE_URI, /^pvc:\/\/camserve-models\//);
  assert.equal(env.MODELS_DIR, '/mnt/models');
  assert.equal(env.MODEL_NAME, 'shapes');
});

test('probes ask GET routes of openapi.yaml, on the container port, which is the service\'s default PORT and the image\'s', { skip }, async () => {
  const facts = serviceFacts();
  assert.ok(facts.getRoutes.has('/healthz') && facts.getRoutes.has('/readyz'));
  const defaultPort = Number(ENVIRONMENT.find((v) => v.name === 'PORT')!.default);
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, new RegExp(`^EXPOSE ${defaultPort}$`, 'm'));
  const r = await report();
  const containers = [
    ...['base', 'overlays/example', 'overlays/models-from-image'].map((k) => find(r.rendered[k], 'Deployment', 'camserve')!.spec.template.spec.containers[0] as Obj),
    r.rendered.kserve[0].spec.predictor.containers[0] as Obj,
  ];
  for (const c of containers) {
    assert.deepEqual(c.ports.map((p: Obj) => p.containerPort), [defaultPort]);
    for (const [probe, route] of [['startupProbe', '/readyz'], ['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']]) {
      const get = c[probe].httpGet;
      assert.equal(get.path, route, probe);
      assert.ok(facts.getRoutes.has(get.path));
      assert.ok(get.port === defaultPort || c.ports.find((p: Obj) => p.name === get.port)?.containerPort === defaultPort, `${probe} port ${get.port}`);
    }
  }
  // the Service sends its port to the named container port
  const svc = find(r.rendered.base, 'Service')!;
  assert.equal(svc.spec.ports[0].targetPort, 'http');
});

test('the grace period covers preStop + SHUTDOWN_TIMEOUT_MS + the exit margin, inside Kubernetes\' default 30 s', { skip }, async () => {
  const r = await report();
  for (const pod of [find(r.rendered.base, 'Deployment')!.spec.template.spec, r.rendered.kserve[0].spec.predictor]) {
    const c = pod.containers[0];
    const sleep = Number(c.lifecycle.preStop.exec.command[1]);
    const timeout = Number(c.env.find((e: Obj) => e.name === 'SHUTDOWN_TIMEOUT_MS').value);
    assert.equal(String(timeout), ENVIRONMENT.find((v) => v.name === 'SHUTDOWN_TIMEOUT_MS')!.default, 'the manifests say the default out loud');
    assert.ok(pod.terminationGracePeriodSeconds >= sleep + (timeout + SHUTDOWN_MARGIN_MS) / 1000);
    assert.ok(pod.terminationGracePeriodSeconds <= 30);
  }
});

test('a probe path the service does not serve fails the validation', { skip }, async () => {
  const dir = plant('base/deployment.yaml', 'path: /healthz', 'path: /health');
  const r = await validateDeployment(dir, { kustomize });
  for (const k of ['base', 'overlays/example', 'overlays/models-from-image']) {
    assert.ok(r.problems.some((p) => p.startsWith(`${k}: Deployment/camserve: container camserve: livenessProbe asks GET /health, which the service does not serve`)), `${k}:\n${r.problems.join('\n')}`);
  }
  assert.equal(r.problems.filter((p) => p.startsWith('kserve')).length, 0, 'the untouched InferenceService stays valid');
});

const PLANTED: [string, string, string | RegExp, string, RegExp][] = [
  ['a misspelt field', 'base/deployment.yaml', 'livenessProbe:', 'livenesProbe:', /containers\[0\]\.livenesProbe: unknown field/],
  ['a probe on another port', 'base/deployment.yaml', /(readinessProbe:\s+httpGet:\s+path: \/readyz\s+port:) http/, '$1 9090', /readinessProbe asks port 9090 \(9090\), the service listens on 8080/],
  ['a liveness probe on /readyz (kills pods while models load)', 'base/deployment.yaml', 'path: /healthz', 'path: /readyz', /livenessProbe should ask \/healthz/],
  ['a grace period shorter than the shutdown', 'base/deployment.yaml', 'terminationGracePeriodSeconds: 20', 'terminationGracePeriodSeconds: 10', /terminationGracePeriodSeconds 10 < preStop 5 s/],
  ['a longer SHUTDOWN_TIMEOUT_MS without a longer grace period', 'base/deployment.yaml', 'value: "7000"', 'value: "30000"', /terminationGracePeriodSeconds 20 < preStop 5 s \+ SHUTDOWN_TIMEOUT_MS 30000 ms/],
  ['a writable root filesystem', 'base/deployment.yaml', 'readOnlyRootFilesystem: true', 'readOnlyRootFilesystem: false', /container camserve: readOnlyRootFilesystem must be true/],
  ['a wrong type', 'base/deployment.yaml', 'replicas: 2', 'replicas: two', /spec\/replicas must be integer/],
  ['a Service port to nowhere', 'base/service.yaml', 'targetPort: http', 'targetPort: web', /targetPort web is no container port/],
  ['an HPA for a missing Deployment', 'base/hpa.yaml', '    name: camserve\n  minReplicas', '    name: camserv\n  minReplicas', /scaleTargetRef Deployment\/camserv is not in this rendering/],
  ['a ServiceMonitor on an unserved path', 'overlays/example/servicemonitor.yaml', 'path: /metrics', 'path: /metric', /path \/metric is not served/],
  ['a misspelt ServiceMonitor field', 'overlays/example/servicemonitor.yaml', 'interval: 30s', 'intervall: 30s', /endpoints\[0\]\.intervall: unknown field/],
  ['a scale metric KServe does not know', 'kserve/inferenceservice.yaml', 'scaleMetric: cpu', 'scaleMetric: gpu', /\/spec\/predictor\/scaleMetric: must be equal to one of the allowed values/],
  ['a KServe predictor container with another name', 'kserve/inferenceservice.yaml', 'name: kserve-container', 'name: camserve', /must be named kserve-container/],
  ['a misspelt KServe container field', 'kserve/inferenceservice.yaml', 'readinessProbe:', 'readinesProbe:', /predictor\.containers\[0\]\.readinesProbe: unknown field/],
  ['MODELS_DIR elsewhere than /mnt/models', 'kserve/inferenceservice.yaml', 'value: /mnt/models', 'value: /models', /MODELS_DIR must be \/mnt\/models/],
];

for (const [what, file, from, to, expected] of PLANTED) {
  test(`planted fault fails the validation: ${what}`, { skip }, async () => {
    const only = file.startsWith('base/') ? ['base'] : [path.dirname(file)];
    const r = await validateDeployment(plant(file, from, to), { kustomize, only });
    assert.ok(r.problems.some((p) => expected.test(p)), `expected ${expected}, got:\n${r.problems.join('\n')}`);
  });
}
