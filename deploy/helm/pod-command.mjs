// Turns the first container of a rendered Deployment into the command line a kubelet would run,
// on this machine: its args, its env (values, and secretKeyRef entries from --secret KEY=VALUE,
// honouring `optional`), its volume mounts mapped to host folders (emptyDir and configMap
// volumes made under WORKDIR, hostPath as is). deploy/helm/check --s3-run uses it to run the
// S3-store rendering's gateway, worker and reporter as local processes against a local S3 server.
//
//   node deploy/helm/pod-command.mjs NODE_MODULES_DIR RENDERED.yaml DEPLOYMENT BINARY WORKDIR \
//        [--port N] [--secret KEY=VALUE]...
//
// Prints NUL-separated words for `env -i NAME=VALUE... BINARY ARGS...` (read them with
// `mapfile -d ''`). Exit status 1 with a message for what it cannot map (a PVC, a missing
// non-optional Secret key, a path outside every mount).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [modules, rendered, name, binary, workdir, ...rest] = process.argv.slice(2);
if (!workdir) {
  console.error("usage: node pod-command.mjs NODE_MODULES_DIR RENDERED.yaml DEPLOYMENT BINARY WORKDIR [--port N] [--secret KEY=VALUE]...");
  process.exit(2);
}
const die = (m) => {
  console.error(`pod-command: ${m}`);
  process.exit(1);
};
let port = null;
const secret = new Map();
for (let i = 0; i < rest.length; i += 2) {
  if (rest[i] === "--port") port = rest[i + 1];
  else if (rest[i] === "--secret" && rest[i + 1]?.includes("=")) {
    const [k, ...v] = rest[i + 1].split("=");
    secret.set(k, v.join("="));
  } else die(`unknown argument ${rest[i]}`);
}
const yaml = (await import(pathToFileURL(path.join(modules, "js-yaml/dist/js-yaml.mjs")).href)).default;
const docs = yaml.loadAll(fs.readFileSync(rendered, "utf8")).filter((d) => d && typeof d === "object");
const dep = docs.find((d) => d.kind === "Deployment" && d.metadata?.name === name) || die(`${rendered}: no Deployment ${name}`);
const pod = dep.spec.template.spec;
const c = pod.containers[0];
const volumes = new Map((pod.volumes || []).map((v) => [v.name, v]));

// mountPath -> host folder
const mounts = [];
for (const m of c.volumeMounts || []) {
  const v = volumes.get(m.name) || die(`${name}: mount of undeclared volume ${m.name}`);
  let host;
  if (v.hostPath) host = v.hostPath.path;
  else if (v.emptyDir) {
    host = path.join(workdir, `volume-${m.name}`);
    fs.mkdirSync(host, { recursive: true });
  } else if (v.configMap) {
    const cm = docs.find((d) => d.kind === "ConfigMap" && d.metadata?.name === v.configMap.name) ||
      die(`${name}: ConfigMap ${v.configMap.name} is not in ${rendered}`);
    host = path.join(workdir, `volume-${m.name}`);
    fs.mkdirSync(host, { recursive: true });
    for (const [k, text] of Object.entries(cm.data || {})) fs.writeFileSync(path.join(host, k), text);
  } else die(`${name}: volume ${m.name} (${Object.keys(v).filter((k) => k !== "name").join(", ")}) cannot be run locally`);
  mounts.push([m.mountPath, host]);
}
mounts.sort((a, b) => b[0].length - a[0].length);
const mapPath = (p) => {
  for (const [mp, host] of mounts) if (p === mp || p.startsWith(`${mp}/`)) return host + p.slice(mp.length);
  return null;
};
// A value that is an absolute path (or --flag=/path) must lie in a mount: the root is read-only.
const mapWord = (w, what) => {
  const m = w.match(/^(--[\w-]+=)?(\/.*)$/);
  if (!m) return w;
  const host = mapPath(m[2]);
  if (host === null) die(`${name}: ${what} ${w} is outside every volume mount (the root filesystem is read-only)`);
  return (m[1] || "") + host;
};

const env = [`PATH=${process.env.PATH}`];
const tmp = mapPath("/tmp");
if (tmp) env.push(`TMPDIR=${tmp}`);
for (const e of c.env || []) {
  if ("value" in e) env.push(`${e.name}=${mapWord(String(e.value), `env ${e.name}`)}`);
  else if (e.valueFrom?.secretKeyRef) {
    const ref = e.valueFrom.secretKeyRef;
    if (secret.has(ref.key)) env.push(`${e.name}=${secret.get(ref.key)}`);
    else if (!ref.optional) die(`${name}: env ${e.name} needs key ${ref.key} of Secret ${ref.name}; pass --secret ${ref.key}=...`);
  } else die(`${name}: env ${e.name}: only value and secretKeyRef can be run locally`);
}
let args = (c.args || []).map((a) => mapWord(String(a), "argument"));
if (port) args = args.map((a) => (a.startsWith("--port=") ? `--port=${port}` : a));
process.stdout.write(["-i", ...env, binary, ...args].join("\0") + "\0");
