// Validates rendered Kubernetes manifests offline against the Kubernetes OpenAPI schemas shipped
// in the npm package kubernetes-models, plus cross-object checks the schemas cannot express.
//
//   node deploy/helm/validate.mjs NODE_MODULES_DIR MANIFEST.yaml...
//
// The package's compiled schemas accept unknown fields (which an API server with strict field
// validation rejects), so unknown fields are found separately from the package's TypeScript
// declarations: a misspelt key such as readOnlyRootFileSystem is an error here.
//
// NODE_MODULES_DIR holds kubernetes-models and js-yaml (deploy/helm/check installs them into a
// cache folder outside the repository). Exit status 1 with one line per problem, naming the file,
// the object and the field.
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
if (!modules || files.length === 0) {
  console.error("usage: node validate.mjs NODE_MODULES_DIR MANIFEST.yaml...");
  process.exit(2);
}
const load = (p) => import(pathToFileURL(path.join(modules, p)).href);
const yaml = (await load("js-yaml/dist/js-yaml.mjs")).default;

const problems = [];
let checked = 0;

// Field names per declaration file: {props: Map(name -> {file of the element type or null})}.
const declarations = new Map();
function declaration(file) {
  if (declarations.has(file)) return declarations.get(file);
  let result = null;
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, "utf8");
    const imports = new Map();
    for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
      const target = m[2].startsWith(".")
        ? path.join(path.dirname(file), m[2].replace(/\.js$/, ".d.ts"))
        : path.join(modules, `${m[2]}.d.ts`);
      imports.set(m[1], target);
    }
    const body = text.match(/^export interface \w+[^{]*\{\n([\s\S]*?)^\}/m);
    if (body) {
      const props = new Map();
      for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
        const type = m[2].trim();
        const named = type.match(/^(?:Array<)?(\w+)>?;$/);
        props.set(m[1], named && imports.has(named[1]) ? imports.get(named[1]) : null);
      }
      result = { props };
    }
  }
  declarations.set(file, result);
  return result;
}

// Reports keys of VALUE that the declaration in FILE does not have, recursively.
function unknownFields(value, file, where, at) {
  const decl = declaration(file);
  if (!decl || value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(v, file, where, `${at}[${i}]`));
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    if (!decl.props.has(key)) {
      problems.push(`${where}: unknown field ${at}.${key}`);
      continue;
    }
    const child = decl.props.get(key);
    if (child) unknownFields(v, child, where, `${at}.${key}`);
  }
}

function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => (labels || {})[k] === v);
}

for (const file of files) {
  const docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter((d) => d && typeof d === "object");
  const podTemplates = [];  // {owner, labels}
  const objects = [];
  for (const doc of docs) {
    const where = `${file}: ${doc.kind}/${doc.metadata?.name}`;
    if (!doc.apiVersion || !doc.kind) {
      problems.push(`${file}: an object without apiVersion/kind`);
      continue;
    }
    const [group, version] = doc.apiVersion.includes("/") ? doc.apiVersion.split("/") : [null, doc.apiVersion];
    const modulePath = path.join("kubernetes-models", ...(group ? [group, version] : [version]), `${doc.kind}.js`);
    if (!fs.existsSync(path.join(modules, modulePath))) {
      problems.push(`${where}: no schema for ${doc.apiVersion} ${doc.kind} (unknown or removed API version)`);
      continue;
    }
    const Model = (await load(modulePath))[doc.kind];
    try {
      new Model(doc).validate();
    } catch (e) {
      const details = (e.errors || []).map((x) => `${x.instancePath || "/"} ${x.message}${x.params?.additionalProperty ? ` (${x.params.additionalProperty})` : ""}`);
      problems.push(`${where}: ${details.length ? details.join("; ") : e.message}`);
    }
    unknownFields(doc, path.join(modules, modulePath.replace(/\.js$/, ".d.ts")), where, "");
    checked++;
    objects.push(doc);
    const spec = doc.spec || {};
    const tpl = doc.kind === "CronJob" ? spec.jobTemplate?.spec?.template : spec.template;
    if (tpl) {
      podTemplates.push({ owner: where, labels: tpl.metadata?.labels || {} });
      if (spec.selector?.matchLabels && !matches(spec.selector.matchLabels, tpl.metadata?.labels))
        problems.push(`${where}: spec.selector does not match the pod template's labels`);
      const pod = tpl.spec || {};
      const volumes = new Set((pod.volumes || []).map((v) => v.name));
      for (const c of spec.volumeClaimTemplates || []) volumes.add(c.metadata?.name);
      for (const c of [...(pod.initContainers || []), ...(pod.containers || [])]) {
        for (const m of c.volumeMounts || [])
          if (!volumes.has(m.name)) problems.push(`${where}: container ${c.name} mounts undefined volume ${m.name}`);
        const ports = new Set((c.ports || []).map((p) => p.name));
        for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
          const port = c[probe]?.httpGet?.port ?? c[probe]?.tcpSocket?.port;
          if (typeof port === "string" && !ports.has(port))
            problems.push(`${where}: ${c.name}.${probe} uses port name ${port} that the container does not declare`);
        }
      }
    }
  }
  // Services, PDBs and HPAs must point at something this release renders.
  for (const o of objects) {
    const where = `${file}: ${o.kind}/${o.metadata?.name}`;
    if (o.kind === "Service" && o.spec?.selector && !podTemplates.some((t) => matches(o.spec.selector, t.labels)))
      problems.push(`${where}: selector matches no pod template in this release`);
    if (o.kind === "PodDisruptionBudget" && !podTemplates.some((t) => matches(o.spec?.selector?.matchLabels, t.labels)))
      problems.push(`${where}: selector matches no pod template in this release`);
    if (o.kind === "HorizontalPodAutoscaler") {
      const ref = o.spec?.scaleTargetRef || {};
      if (!objects.some((x) => x.kind === ref.kind && x.metadata?.name === ref.name))
        problems.push(`${where}: scaleTargetRef ${ref.kind}/${ref.name} is not in this release`);
    }
    if (o.kind === "Ingress")
      for (const rule of o.spec?.rules || [])
        for (const p of rule.http?.paths || []) {
          const name = p.backend?.service?.name;
          if (name && !objects.some((x) => x.kind === "Service" && x.metadata?.name === name))
            problems.push(`${where}: backend service ${name} is not in this release`);
        }
  }
}

for (const p of problems) console.error(`validate: ${p}`);
console.log(`validate: ${checked} objects in ${files.length} file(s), ${problems.length} problem(s)`);
process.exit(problems.length ? 1 : 0);
