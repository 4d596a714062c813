// Offline check of deploy/kubernetes: renders every kustomization with kustomize, validates each object
// against the Kubernetes API schemas (kubernetes-models, unknown fields included; KServe's by our schema),
// then checks what the schemas cannot know: probes on routes the service serves, at the port it listens
// on; a grace period that covers preStop + SHUTDOWN_TIMEOUT_MS; hardened containers; Services, the HPA,
// the PDB and the ServiceMonitor pointing at pods and ports that exist.
//
//   node --import tsx tools/deploy/validate.ts [DEPLOY_DIR]      (npm run check:deploy)
//
// kustomize: $KUSTOMIZE (a command, e.g. "kustomize build"), else `kustomize build`, else `kubectl kustomize`
// (Debian's kubernetes-client is enough; .ci/run installs it).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { ENVIRONMENT, SHUTDOWN_MARGIN_MS } from '../../src/http/config.js';
import { unknownFields } from './fields.js';

const run = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DEPLOY_DIR = path.join(ROOT, 'deploy/kubernetes');

type Obj = Record<string, any>;

/** The kustomize command line to render a directory, or undefined when none is installed. */
export function kustomizeCommand(env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  if (env.KUSTOMIZE?.trim()) return env.KUSTOMIZE.trim().split(/\s+/);
  const has = (bin: string) => {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  if (has('kustomize')) return ['kustomize', 'build'];
  if (has('kubectl')) return ['kubectl', 'kustomize'];
  return undefined;
}

/** Every folder under `dir` holding a kustomization.yaml, sorted. */
export function kustomizations(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    if (existsSync(path.join(d, 'kustomization.yaml'))) found.push(d);
    for (const e of readdirSync(d)) if (statSync(path.join(d, e)).isDirectory()) walk(path.join(d, e));
  };
  walk(dir);
  return found.sort();
}

/** The objects kustomize renders from `dir`. */
export async function render(dir: string, kustomize: string[]): Promise<Obj[]> {
  const { stdout } = await run(kustomize[0], [...kustomize.slice(1), dir], { maxBuffer: 16 << 20 });
  // kustomize 2.0 leaves an empty document where a `$patch: delete` removed a resource.
  return parseAllDocuments(stdout).map((d) => d.toJS() as Obj).filter((o) => o && typeof o === 'object' && Object.keys(o).length > 0);
}

// ---- schemas ----

/** apiVersion/kind → the kubernetes-models module and the folder of its declarations. */
const MODELS: Record<string, { module: string; dts: string }> = {};
for (const [apiVersion, module, kinds] of [
  ['v1', 'kubernetes-models/v1', ['Namespace', 'Service', 'Secret', 'ConfigMap', 'PersistentVolumeClaim', 'ServiceAccount']],
  ['apps/v1', 'kubernetes-models/apps/v1', ['Deployment', 'StatefulSet']],
  ['autoscaling/v2', 'kubernetes-models/autoscaling/v2', ['HorizontalPodAutoscaler']],
  ['policy/v1', 'kubernetes-models/policy/v1', ['PodDisruptionBudget']],
  ['networking.k8s.io/v1', 'kubernetes-models/networking.k8s.io/v1', ['NetworkPolicy', 'Ingress']],
  ['monitoring.coreos.com/v1', '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1', ['ServiceMonitor', 'PodMonitor']],
] as const) {
  for (const kind of kinds) MODELS[`${apiVersion}/${kind}`] = { module, dts: path.join(ROOT, 'node_modules', module) };
}

interface Validatable { validate(): void }
type ModelClass = new (data: Obj) => Validatable;

async function modelClass(module: string, kind: string): Promise<ModelClass> {
  const m = await import(module) as Record<string, ModelClass>;
  if (!m[kind]) throw new Error(`${module} has no ${kind}`);
  return m[kind];
}

function schemaErrors(cls: ModelClass, value: Obj, where: string): string[] {
  try {
    new cls(value).validate();
    return [];
  } catch (e) {
    return [`${where}: ${(e as Error).message.split('\n').join('; ')}`];
  }
}

const KSERVE_SCHEMA = JSON.parse(readFileSync(path.join(ROOT, 'tools/deploy/kserve-inferenceservice.schema.json'), 'utf8')) as Obj;
const ajv = new Ajv({ allErrors: true, strict: false });
const validateIsvc = ajv.compile(KSERVE_SCHEMA);
/** Keys of a KServe component that are not PodSpec fields. */
const COMPONENT_KEYS = new Set(Object.keys(KSERVE_SCHEMA.definitions.component.properties as Obj));
const IMPLEMENTATIONS = ['sklearn', 'xgboost', 'tensorflow', 'pytorch', 'triton', 'onnx', 'huggingface', 'pmml', 'lightgbm', 'paddle', 'model'];

/** Schema problems of one rendered object. */
async function schemaProblems(o: Obj, where: string): Promise<string[]> {
  const key = `${o.apiVersion}/${o.kind}`;
  if (key === 'serving.kserve.io/v1beta1/InferenceService') {
    const problems = validateIsvc(o) ? [] : (validateIsvc.errors ?? []).map((e) => `${where}${e.instancePath}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
    const PodSpec = await modelClass('kubernetes-models/v1', 'PodSpec');
    for (const [name, component] of Object.entries((o.spec ?? {}) as Obj)) {
      const podSpec = Object.fromEntries(Object.entries(component as Obj).filter(([k]) => !COMPONENT_KEYS.has(k)));
      if (!podSpec.containers) continue; // a framework predictor without container overrides
      problems.push(...schemaErrors(PodSpec, podSpec, `${where}.spec.${name} (PodSpec)`));
      problems.push(...unknownFields(podSpec, path.join(ROOT, 'node_modules/kubernetes-models/v1/PodSpec.d.ts'), `${where}.spec.${name}`));
    }
    return problems;
  }
  const model = MODELS[key];
  if (!model) return [`${where}: no schema known for ${key}; add it to tools/deploy/validate.ts`];
  return [
    ...schemaErrors(await modelClass(model.module, o.kind as string), o, where),
    ...unknownFields(o, path.join(model.dts, `${o.kind}.d.ts`), where),
  ];
}

// ---- what the service serves ----

export interface ServiceFacts {
  /** GET paths of openapi.yaml without parameters */
  getRoutes: Set<string>;
  /** the port the service listens on without PORT */
  defaultPort: number;
  defaultShutdownMs: number;
  marginMs: number;
}

export function serviceFacts(openapiFile = path.join(ROOT, 'openapi.yaml')): ServiceFacts {
  const api = parse(readFileSync(openapiFile, 'utf8')) as { paths: Record<string, Obj> };
  const def = (name: string) => Number(ENVIRONMENT.find((v) => v.name === name)!.default);
  return {
    getRoutes: new Set(Object.entries(api.paths).filter(([p, ops]) => ops.get && !p.includes('{')).map(([p]) => p)),
    defaultPort: def('PORT'),
    defaultShutdownMs: def('SHUTDOWN_TIMEOUT_MS'),
    marginMs: SHUTDOWN_MARGIN_MS,
  };
}

// ---- checks across objects ----

interface Pod { where: string; labels: Obj; spec: Obj; camserveNames: Set<string> }

const isCamserveImage = (image: unknown) => typeof image === 'string' && /(^|\/)camserve(:|@|$)/.test(image);

/** Pod specs of the rendered objects: Deployments' templates and InferenceService components. */
function pods(objects: Obj[], where: (o: Obj) => string): Pod[] {
  const out: Pod[] = [];
  for (const o of objects) {
    if (['Deployment', 'StatefulSet'].includes(o.kind) && o.spec?.template?.spec) {
      const spec = o.spec.template.spec as Obj;
      out.push({ where: where(o), labels: o.spec.template.metadata?.labels ?? {}, spec, camserveNames: new Set((spec.containers ?? []).filter((c: Obj) => isCamserveImage(c.image)).map((c: Obj) => c.name as string)) });
    }
    if (o.kind === 'InferenceService') {
      for (const [name, c] of Object.entries((o.spec ?? {}) as Obj)) {
        if (!c?.containers) continue;
        out.push({ where: `${where(o)}.spec.${name}`, labels: {}, spec: c as Obj, camserveNames: new Set((c.containers as Obj[]).filter((x) => isCamserveImage(x.image)).map((x) => x.name as string)) });
      }
    }
  }
  return out;
}

function env(container: Obj, name: string): string | undefined {
  return (container.env as Obj[] | undefined)?.find((e) => e.name === name)?.value as string | undefined;
}

function resolvePort(container: Obj, port: unknown): number | undefined {
  if (typeof port === 'number') return port;
  return (container.ports as Obj[] | undefined)?.find((p) => p.name === port)?.containerPort as number | undefined;
}

function preStopSeconds(container: Obj): number | undefined {
  const h = container.lifecycle?.preStop as Obj | undefined;
  if (!h) return undefined;
  if (h.sleep?.seconds !== undefined) return Number(h.sleep.seconds);
  const cmd = h.exec?.command as string[] | undefined;
  if (cmd && cmd[0] === 'sleep' && /^\d+$/.test(cmd[1] ?? '')) return Number(cmd[1]);
  return 0;
}

function selects(selector: Obj | undefined, labels: Obj): boolean {
  const want = (selector?.matchLabels ?? selector ?? {}) as Obj;
  return Object.keys(want).length > 0 && Object.entries(want).every(([k, v]) => labels[k] === v);
}

function podProblems(pod: Pod, facts: ServiceFacts): string[] {
  const problems: string[] = [];
  const spec = pod.spec;
  const podSc = (spec.securityContext ?? {}) as Obj;
  const volumes = new Map(((spec.volumes ?? []) as Obj[]).map((v) => [v.name as string, v]));
  for (const c of [...((spec.initContainers ?? []) as Obj[]), ...((spec.containers ?? []) as Obj[])]) {
    const at = `${pod.where}: container ${c.name}`;
    const sc = (c.securityContext ?? {}) as Obj;
    const eff = (k: string) => sc[k] ?? podSc[k];
    if (sc.allowPrivilegeEscalation !== false) problems.push(`${at}: allowPrivilegeEscalation must be false`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${at}: readOnlyRootFilesystem must be true`);
    if (!((sc.capabilities?.drop ?? []) as string[]).includes('ALL')) problems.push(`${at}: capabilities must drop ALL`);
    if (eff('runAsNonRoot') !== true) problems.push(`${at}: runAsNonRoot must be true`);
    if ((sc.seccompProfile ?? podSc.seccompProfile)?.type !== 'RuntimeDefault') problems.push(`${at}: seccompProfile must be RuntimeDefault`);
    if (!c.resources?.limits?.cpu || !c.resources?.limits?.memory || !c.resources?.requests?.cpu) problems.push(`${at}: needs CPU and memory limits and a CPU request`);
    if (!pod.camserveNames.has(c.name as string)) continue;

    // camserve itself
    if (eff('runAsUser') !== 1000 || eff('runAsGroup') !== 1000) problems.push(`${at}: must run as 1000:1000 (the image's user)`);
    const port = Number(env(c, 'PORT') ?? facts.defaultPort);
    const declared = ((c.ports ?? []) as Obj[]).map((p) => p.containerPort as number);
    if (!declared.includes(port)) problems.push(`${at}: the service listens on ${port} (PORT), not among the container ports ${declared.join(', ')}`);
    for (const [probe, route] of [['startupProbe', '/readyz'], ['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']] as const) {
      const p = c[probe] as Obj | undefined;
      if (!p?.httpGet) { problems.push(`${at}: ${probe} with httpGet is missing`); continue; }
      const pp = p.httpGet.path as string;
      if (!facts.getRoutes.has(pp)) problems.push(`${at}: ${probe} asks GET ${pp}, which the service does not serve (GET routes: ${[...facts.getRoutes].join(', ')})`);
      else if (pp !== route) problems.push(`${at}: ${probe} should ask ${route}, not ${pp}`);
      const to = resolvePort(c, p.httpGet.port);
      if (to !== port) problems.push(`${at}: ${probe} asks port ${String(p.httpGet.port)} (${to ?? 'unknown'}), the service listens on ${port}`);
    }
    const shutdownMs = Number(env(c, 'SHUTDOWN_TIMEOUT_MS') ?? facts.defaultShutdownMs);
    const preStop = preStopSeconds(c);
    if (preStop === undefined) problems.push(`${at}: no preStop hook (endpoints need a moment to drain before SIGTERM)`);
    const need = (preStop ?? 0) + Math.ceil((shutdownMs + facts.marginMs) / 1000);
    const grace = (spec.terminationGracePeriodSeconds ?? 30) as number;
    if (grace < need) problems.push(`${pod.where}: terminationGracePeriodSeconds ${grace} < preStop ${preStop ?? 0} s + SHUTDOWN_TIMEOUT_MS ${shutdownMs} ms + ${facts.marginMs} ms margin`);
    else if (grace > need + 10) problems.push(`${pod.where}: terminationGracePeriodSeconds ${grace} is far above what the service needs (${need} s)`);
    const mounts = ((c.volumeMounts ?? []) as Obj[]);
    if (sc.readOnlyRootFilesystem === true && !mounts.some((m) => m.mountPath === '/tmp' && volumes.get(m.name as string)?.emptyDir)) problems.push(`${at}: a read-only root needs an emptyDir on /tmp`);
    const modelsDir = env(c, 'MODELS_DIR');
    if (env(c, 'STORAGE_URI')) {
      if (modelsDir !== '/mnt/models') problems.push(`${at}: with STORAGE_URI, MODELS_DIR must be /mnt/models (where KServe puts the model)`);
      if (!env(c, 'MODEL_NAME')) problems.push(`${at}: MODEL_NAME names the model served from /mnt/models`);
    } else if (!mounts.some((m) => m.mountPath === (modelsDir ?? '/models'))) {
      problems.push(`${at}: nothing is mounted on MODELS_DIR ${modelsDir ?? '/models'}`);
    }
  }
  return problems;
}

function crossProblems(objects: Obj[], podList: Pod[], facts: ServiceFacts, where: (o: Obj) => string): string[] {
  const problems: string[] = [];
  const services = objects.filter((o) => o.kind === 'Service');
  for (const s of services) {
    const targets = podList.filter((p) => selects(s.spec?.selector, p.labels));
    if (!targets.length) { problems.push(`${where(s)}: its selector matches no pod`); continue; }
    for (const port of (s.spec.ports ?? []) as Obj[]) {
      const tp = port.targetPort ?? port.port;
      const ok = targets.some((p) => ((p.spec.containers ?? []) as Obj[]).some((c) => resolvePort(c, tp) !== undefined && (c.ports as Obj[] | undefined)?.some((cp) => cp.containerPort === resolvePort(c, tp))));
      if (!ok) problems.push(`${where(s)}: targetPort ${String(tp)} is no container port of its pods`);
    }
  }
  for (const h of objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
    const ref = h.spec?.scaleTargetRef as Obj;
    const target = objects.find((o) => o.kind === ref?.kind && o.metadata?.name === ref?.name);
    if (!target) problems.push(`${where(h)}: scaleTargetRef ${ref?.kind}/${ref?.name} is not in this rendering`);
    else if (((h.spec.metrics ?? []) as Obj[]).some((m) => m.resource?.name === 'cpu' && m.resource?.target?.type === 'Utilization')
      && ((target.spec.template.spec.containers ?? []) as Obj[]).some((c) => !c.resources?.requests?.cpu)) {
      problems.push(`${where(h)}: CPU utilisation needs a CPU request on every container of ${ref.name}`);
    }
  }
  for (const d of objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
    if (!podList.some((p) => selects(d.spec?.selector, p.labels))) problems.push(`${where(d)}: its selector matches no pod`);
  }
  for (const m of objects.filter((o) => o.kind === 'ServiceMonitor')) {
    const svc = services.filter((s) => selects(m.spec?.selector, s.metadata?.labels ?? {}));
    if (!svc.length) problems.push(`${where(m)}: its selector matches no Service`);
    for (const e of (m.spec?.endpoints ?? []) as Obj[]) {
      if (!svc.some((s) => ((s.spec.ports ?? []) as Obj[]).some((p) => p.name === e.port))) problems.push(`${where(m)}: no selected Service has a port named ${e.port}`);
      if (!facts.getRoutes.has((e.path ?? '/metrics') as string)) problems.push(`${where(m)}: path ${e.path} is not served`);
    }
  }
  for (const isvc of objects.filter((o) => o.kind === 'InferenceService')) {
    const p = (isvc.spec?.predictor ?? {}) as Obj;
    const impl = IMPLEMENTATIONS.filter((k) => p[k]);
    if (p.containers && impl.length) problems.push(`${where(isvc)}: a custom predictor (containers) takes no ${impl.join(', ')}`);
    if (p.containers && !((p.containers as Obj[]).some((c) => c.name === 'kserve-container'))) problems.push(`${where(isvc)}: the predictor container must be named kserve-container`);
    if (p.minReplicas !== undefined && p.maxReplicas && p.minReplicas > p.maxReplicas) problems.push(`${where(isvc)}: minReplicas > maxReplicas`);
  }
  return problems;
}

// ---- all together ----

export interface Report {
  /** kustomization folder (relative to the deploy folder) → rendered objects */
  rendered: Record<string, Obj[]>;
  problems: string[];
}

/** Renders and checks every kustomization under `deployDir` (or those `only` names, relative to it). */
export async function validateDeployment(deployDir = DEPLOY_DIR, options: { kustomize?: string[]; facts?: ServiceFacts; only?: string[] } = {}): Promise<Report> {
  const kustomize = options.kustomize ?? kustomizeCommand();
  if (!kustomize) throw new Error('no kustomize: install kubectl (Debian: apt-get install kubernetes-client) or kustomize, or set KUSTOMIZE');
  const facts = options.facts ?? serviceFacts();
  const report: Report = { rendered: {}, problems: [] };
  for (const dir of kustomizations(deployDir)) {
    const rel = path.relative(deployDir, dir) || '.';
    if (options.only && !options.only.includes(rel)) continue;
    let objects: Obj[];
    try {
      objects = await render(dir, kustomize);
    } catch (e) {
      report.problems.push(`${rel}: kustomize failed: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`);
      continue;
    }
    report.rendered[rel] = objects;
    const where = (o: Obj) => `${rel}: ${o.kind}/${o.metadata?.name}`;
    for (const o of objects) report.problems.push(...await schemaProblems(o, where(o)));
    const podList = pods(objects, where);
    for (const p of podList) report.problems.push(...podProblems(p, facts));
    report.problems.push(...crossProblems(objects, podList, facts, where));
  }
  return report;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = path.resolve(process.argv[2] ?? DEPLOY_DIR);
  const report = await validateDeployment(dir);
  for (const [k, objs] of Object.entries(report.rendered)) process.stdout.write(`${k}: ${objs.map((o) => `${o.kind}/${o.metadata?.name}`).join(', ')}\n`);
  for (const p of report.problems) process.stdout.write(`problem: ${p}\n`);
  process.stdout.write(report.problems.length ? `${report.problems.length} problems\n` : 'valid\n');
  process.exitCode = report.problems.length ? 1 : 0;
}
