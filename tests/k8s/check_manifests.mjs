// The Kubernetes manifests (k8s/): each parses, each object validates
// against the Kubernetes OpenAPI schema (kubernetes-models, which compiles
// the upstream schemas with ajv), and the objects agree with each other and
// with synodd: labels and selectors, Service and container ports, the
// SYNOD_* variables synodd knows, the synodctl commands the probes and
// examples run, RBAC, the Dockerfile's stages.
//
//   SYNODD=build/bin/synodd SYNODCTL=build/bin/synodctl \
//     node --test tests/k8s/check_manifests.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const k8s = join(root, "k8s");
const files = [
  ...readdirSync(k8s).filter((f) => f.endsWith(".yaml")).map((f) => join(k8s, f)),
  ...readdirSync(join(k8s, "examples"))
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => join(k8s, "examples", f)),
];

// Every object, with the file it came from. Parse errors fail here.
const objects = files.flatMap((file) =>
  parseAllDocuments(readFileSync(file, "utf8")).map((doc) => {
    if (doc.errors.length > 0) {
      throw new Error(`${file}: YAML: ${doc.errors[0].message}`);
    }
    return { file, obj: doc.toJS() };
  }),
);

const find = (kind, name) =>
  objects.find((o) => o.obj.kind === kind && o.obj.metadata.name === name)?.obj;

// kubernetes-models' class for an apiVersion/kind ("apps/v1" StatefulSet ->
// kubernetes-models/apps/v1/StatefulSet).
async function model(apiVersion, kind) {
  const mod = await import(`kubernetes-models/${apiVersion}/${kind}`);
  return mod[kind];
}

async function validate(obj) {
  const Model = await model(obj.apiVersion, obj.kind);
  new Model(obj).validate(); // throws with the schema path on error
}

const subset = (sel, labels) =>
  Object.entries(sel ?? {}).every(([k, v]) => labels?.[k] === v);

const sts = find("StatefulSet", "synod");
const pod = sts.spec.template;
const synodd = pod.spec.containers.find((c) => c.name === "synodd");
const env = Object.fromEntries(
  synodd.env.filter((e) => "value" in e).map((e) => [e.name, e.value]),
);
const portOf = (address) => Number(address.split(":").pop());
const containerPort = (name) =>
  synodd.ports.find((p) => p.name === name)?.containerPort;

function help(varName, name) {
  const bin = process.env[varName] ?? join(root, "build", "bin", name);
  return execFileSync(bin, ["--help"], { encoding: "utf8" });
}

test("every object validates against the Kubernetes schema", async () => {
  assert.ok(objects.length >= 9, `only ${objects.length} objects found`);
  for (const { file, obj } of objects) {
    assert.ok(obj.apiVersion && obj.kind, `${file}: apiVersion and kind`);
    assert.ok(obj.metadata?.name, `${file}: ${obj.kind} has no metadata.name`);
    try {
      await validate(obj);
    } catch (e) {
      assert.fail(`${file}: ${obj.kind}/${obj.metadata.name}: ${e.message}`);
    }
  }
});

test("the validator rejects what Kubernetes would reject", async () => {
  const broken = structuredClone(sts);
  delete broken.spec.selector;
  await assert.rejects(validate(broken), /selector/);
  const badPort = structuredClone(sts);
  badPort.spec.template.spec.containers[0].ports[0].containerPort = "7700";
  await assert.rejects(validate(badPort), /containerPort/);
  const noImage = structuredClone(find("CronJob", "nightly-report"));
  delete noImage.spec.jobTemplate.spec.template.spec.containers[0].name;
  await assert.rejects(validate(noImage), /name/);
});

test("StatefulSet: selector, services, PDB and anti-affinity agree", () => {
  const labels = pod.metadata.labels;
  assert.ok(subset(sts.spec.selector.matchLabels, labels), "sts selector");
  const peers = find("Service", sts.spec.serviceName);
  assert.ok(peers, `no Service ${sts.spec.serviceName} (serviceName)`);
  assert.equal(peers.spec.clusterIP, "None", "peer Service is headless");
  assert.equal(peers.spec.publishNotReadyAddresses, true);
  assert.ok(subset(peers.spec.selector, labels), "peer Service selector");
  const clients = find("Service", "synod");
  assert.equal(clients.spec.type ?? "ClusterIP", "ClusterIP");
  assert.ok(subset(clients.spec.selector, labels), "client Service selector");
  const pdb = find("PodDisruptionBudget", "synod");
  assert.equal(pdb.spec.maxUnavailable, 1);
  assert.ok(subset(pdb.spec.selector.matchLabels, labels), "PDB selector");
  const anti =
    pod.spec.affinity.podAntiAffinity
      .requiredDuringSchedulingIgnoredDuringExecution[0];
  assert.equal(anti.topologyKey, "kubernetes.io/hostname");
  assert.ok(subset(anti.labelSelector.matchLabels, labels), "anti-affinity");
  assert.equal(sts.spec.podManagementPolicy, "Parallel");
  assert.equal(sts.spec.replicas, 3);
  assert.equal(Number(env.SYNOD_INITIAL_SIZE), sts.spec.replicas);
  const [key, value] = env.SYNOD_K8S_LABEL_SELECTOR.split("=");
  assert.equal(labels[key], value, "discovery's label selector finds pods");
});

test("ports agree: synodd's flags, container ports, Services, probes", () => {
  assert.equal(portOf(env.SYNOD_CLIENT), containerPort("client"));
  assert.equal(portOf(env.SYNOD_PEER), containerPort("peer"));
  assert.equal(portOf(env.SYNOD_ADVERTISE_PEER), containerPort("peer"));
  assert.equal(portOf(env.SYNOD_ADVERTISE_CLIENT), containerPort("client"));
  assert.equal(Number(env.SYNOD_PEER_PORT), containerPort("peer"));
  assert.equal(portOf(env.SYNOD_HTTP), containerPort("http"));
  for (const name of ["synod-peers", "synod"]) {
    for (const p of find("Service", name).spec.ports) {
      const target =
        typeof p.targetPort === "string" ? containerPort(p.targetPort) : p.targetPort;
      assert.ok(target, `${name}: targetPort ${p.targetPort} is no container port`);
      assert.equal(p.port, target, `${name}: port ${p.port} vs ${target}`);
    }
  }
  // Readiness asks /readyz (the rule of `synodctl ready`); liveness asks
  // /healthz, which the replica's loop answers without a quorum.
  assert.deepEqual(synodd.readinessProbe.httpGet, { path: "/readyz", port: "http" });
  assert.deepEqual(synodd.livenessProbe.httpGet, { path: "/healthz", port: "http" });
  assert.ok(
    find("Service", "synod").spec.ports.some((p) => p.targetPort === "http"),
    "the client Service exposes HTTP",
  );
  for (const c of [...objects]) {
    const e = JSON.stringify(c.obj).match(/SYNOD_ENDPOINTS","value":"([^"]+)"/);
    if (e) {
      assert.equal(portOf(e[1]), containerPort("client"), `${c.file}: endpoints`);
    }
  }
});

test("every SYNOD_* variable is one synodd knows", () => {
  const text = help("SYNODD", "synodd");
  for (const name of Object.keys(env).filter((n) => n.startsWith("SYNOD_"))) {
    assert.ok(text.includes(name), `synodd --help does not list ${name}`);
  }
  assert.equal(env.SYNOD_DISCOVERY, "kubernetes");
  const data = synodd.volumeMounts.find((m) => m.name === "data");
  assert.equal(data.mountPath, env.SYNOD_DATA);
  assert.ok(sts.spec.volumeClaimTemplates.some((v) => v.metadata.name === "data"));
});

test("the synodctl commands used exist", () => {
  const text = help("SYNODCTL", "synodctl");
  const used = JSON.stringify(objects.map((o) => o.obj));
  for (const cmd of ["once", "elect"]) {
    assert.ok(used.includes(` ${cmd} `) || used.includes(`"${cmd}"`), `${cmd} unused`);
    assert.match(text, new RegExp(`^  ${cmd}\\b`, "m"), `synodctl lacks ${cmd}`);
  }
});

test("RBAC: the ServiceAccount may get and list pods, nothing more", () => {
  const sa = find("ServiceAccount", pod.spec.serviceAccountName);
  assert.ok(sa, `no ServiceAccount ${pod.spec.serviceAccountName}`);
  const rb = find("RoleBinding", "synod-discovery");
  const role = find("Role", rb.roleRef.name);
  assert.equal(rb.roleRef.kind, "Role");
  assert.ok(role, `RoleBinding names Role ${rb.roleRef.name}, which is absent`);
  assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: sa.metadata.name }]);
  assert.deepEqual(role.rules, [
    { apiGroups: [""], resources: ["pods"], verbs: ["get", "list"] },
  ]);
});

test("Dockerfile: multi-stage on Debian slim, ships synodd and synodctl", () => {
  const text = readFileSync(join(k8s, "Dockerfile"), "utf8");
  const froms = text.match(/^FROM debian:[\w.]+-slim/gm) ?? [];
  assert.ok(froms.length >= 2, "two Debian slim stages");
  assert.match(text, /COPY --from=build .*synodd .*synodctl/);
  assert.match(text, /^ENTRYPOINT \["synodd"\]/m);
  const user = text.match(/^USER (\d+)/m)?.[1];
  assert.equal(Number(user), pod.spec.securityContext.runAsUser);
});

test("leader-elector: the sidecar's flags, and the app asks its port", () => {
  const dep = find("Deployment", "scheduler");
  const [elector] = dep.spec.template.spec.containers.filter((c) =>
    [...(c.command ?? []), ...(c.args ?? [])].includes("elect"),
  );
  assert.ok(elector, "no container runs synodctl elect");
  const argv = [...(elector.command ?? []), ...(elector.args ?? [])];
  assert.equal(argv[0], "synodctl");
  const flag = (name) =>
    argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  assert.equal(flag("election"), "scheduler");
  assert.equal(flag("id"), "$(POD_NAME)", "--id is the pod's name");
  const sidecarEnv = Object.fromEntries(elector.env.map((e) => [e.name, e]));
  assert.equal(sidecarEnv.POD_NAME.valueFrom.fieldRef.fieldPath, "metadata.name");
  const text = execFileSync(
    process.env.SYNODCTL ?? join(root, "build", "bin", "synodctl"),
    ["elect", "--help"],
    { encoding: "utf8" },
  );
  for (const a of argv.filter((x) => x.startsWith("--"))) {
    const name = a.split("=")[0];
    assert.ok(text.includes(name), `synodctl elect --help does not know ${name}`);
  }
  const port = portOf(flag("http"));
  const apps = dep.spec.template.spec.containers.filter((c) => c !== elector);
  assert.ok(
    apps.some((c) => JSON.stringify(c).includes(`http://localhost:${port}/`)),
    `no application container asks http://localhost:${port}/`,
  );
});

test("Dockerfile: exposes the StatefulSet's container ports", () => {
  const text = readFileSync(join(k8s, "Dockerfile"), "utf8");
  const exposed = (text.match(/^EXPOSE (.*)$/m)?.[1] ?? "").split(/\s+/).map(Number);
  for (const p of synodd.ports) {
    assert.ok(exposed.includes(p.containerPort), `EXPOSE lacks ${p.containerPort}`);
  }
});
