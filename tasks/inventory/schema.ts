/**
 * The inventory's shape. Each field carries the words a user needs when it is
 * wrong ("expected …"); cross-field rules live in rules.ts.
 */
import { z } from 'zod';

export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const K3S_EXACT_VERSION = /^v\d+\.\d+\.\d+\+k3s\d+$/;
const K3S_CHANNEL = /^[a-z][a-z0-9.-]*$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$/;
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export function show(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return `${typeof value} ${String(value)}`;
}

/** Error option that says what was found and what is expected. */
function expect(what: string) {
  return {
    error: (iss: { input?: unknown }) =>
      iss.input === undefined ? `is required: expected ${what}` : `got ${show(iss.input)}, expected ${what}`,
  };
}

const label = (what: string) => z.string(expect(what)).regex(DNS1123_LABEL, expect(what));
const NAME = 'a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters, e.g. "pi1")';
const seconds = z.number(expect('a number of seconds, e.g. 30')).positive(expect('a number of seconds, e.g. 30'));
const port = z.number(expect('a TCP port from 1 to 65535')).int(expect('a TCP port from 1 to 65535')).min(1, expect('a TCP port from 1 to 65535')).max(65535, expect('a TCP port from 1 to 65535'));
const path = (what: string) => z.string(expect(what)).min(1, expect(what));
const user = z.string(expect('a login name, e.g. "pi"')).regex(/^[a-z_][a-z0-9_-]*\$?$/, expect('a login name, e.g. "pi"'));

const isIp = (s: string) => z.ipv4().safeParse(s).success || z.ipv6().safeParse(s).success;
const ADDRESS = 'an IPv4/IPv6 address or a host name, e.g. "192.168.1.101"';
const address = z.string(expect(ADDRESS)).refine((s) => isIp(s) || HOSTNAME.test(s), expect(ADDRESS));

const labels = z.record(
  z.string().regex(LABEL_KEY, expect('a Kubernetes label key, e.g. "rack" or "example.com/rack"')),
  z.string(expect('a label value string (quote numbers and booleans)')).regex(LABEL_VALUE, expect('a Kubernetes label value (letters, digits, "-", "_", ".", at most 63)')),
  expect('a mapping of label keys to string values'),
);

export const connectionSchema = z.strictObject(
  {
    user: user.optional(),
    port: port.optional(),
    privateKey: path('the path of an SSH private key, e.g. "~/.ssh/id_ed25519"').optional(),
    knownHosts: path('the path of a known_hosts file, e.g. "~/.ssh/known_hosts"').optional(),
    become: z.boolean(expect('true or false (run privileged commands through sudo)')).optional(),
    connectTimeout: seconds.optional(),
    commandTimeout: seconds.optional(),
  },
  expect('a mapping with user, port, privateKey, knownHosts, become, connectTimeout, commandTimeout'),
);

export const ROLES = ['server', 'agent', 'builder'] as const;

export const nodeSchema = z.strictObject(
  {
    name: label(NAME),
    address,
    role: z.enum(ROLES, expect('one of "server", "agent", "builder"')),
    labels: labels.optional(),
    user: user.optional(),
    port: port.optional(),
    privateKey: path('the path of an SSH private key').optional(),
  },
  expect('a mapping with name, address, role'),
);

const K3S_MIRROR = 'a base URL for k3s release artefacts, e.g. "https://mirror.example/k3s", or a local folder as "file:///srv/k3s"';

export const k3sSchema = z.strictObject(
  {
    version: z
      .string(expect('an exact k3s version such as "v1.31.12+k3s1" or a channel such as "stable"'))
      .refine((s) => K3S_EXACT_VERSION.test(s) || (K3S_CHANNEL.test(s) && !s.startsWith('v')), expect('an exact k3s version such as "v1.31.12+k3s1" or a channel such as "stable"'))
      .optional(),
    mirror: z
      .url({ protocol: /^(https?|file)$/, ...expect(K3S_MIRROR) })
      // A folder only as an absolute file:/// URL (file:k3s would quietly read /k3s).
      .refine((u) => !u.startsWith('file:') || u.startsWith('file:///'), expect(K3S_MIRROR))
      .optional(),
    config: z.record(z.string(), z.unknown(), expect('a mapping of extra k3s config.yaml settings')).optional(),
  },
  expect('a mapping with version, mirror, config'),
);

export const imagesSchema = z.strictObject(
  {
    builder: label(NAME).optional(),
    platform: z.literal('linux/arm/v7', expect('"linux/arm/v7" (armlab builds armv7 hard-float images only)')).optional(),
    recipes: path('the folder of image recipes, e.g. "images"').optional(),
    patches: path('the folder of patches the recipes name, e.g. "patches"').optional(),
    engine: z
      .string(expect('the Docker Engine that builds, as DOCKER_HOST takes it, e.g. "unix:///var/run/docker.sock"'))
      .regex(/^(unix|tcp|ssh):\/\/./, expect('the Docker Engine that builds, as DOCKER_HOST takes it, e.g. "unix:///var/run/docker.sock"'))
      .optional(),
    sourceMirrors: z
      .record(z.string().min(1), z.string(expect('a local path or URL to fetch from instead')).min(1, expect('a local path or URL to fetch from instead')), expect('a mapping of upstream URL prefix to a local path or URL'))
      .optional(),
  },
  expect('a mapping with builder, platform, recipes, patches, engine, sourceMirrors'),
);

export const cniSchema = z.strictObject(
  {
    linkType: z.enum(['VXLAN', 'GRPC'], expect('"VXLAN" or "GRPC"')).optional(),
  },
  expect('a mapping with linkType'),
);

const SCHEDULE = 'a time of day as "HH:MM" (e.g. "03:00") or a systemd OnCalendar expression (e.g. "Mon..Fri 02:30")';
const TIME_SPAN = 'a systemd time span, e.g. "30min" or "1h"';

export const nightlySchema = z.strictObject(
  {
    schedule: z.string(expect(SCHEDULE)).regex(/^[^\n%]+$/, expect(SCHEDULE)).optional(),
    randomizedDelay: z.string(expect(TIME_SPAN)).regex(/^\d+(\.\d+)?\s*(us|ms|s|sec|m|min|h|hr|d)?(\s*\d+(\.\d+)?\s*(us|ms|s|sec|m|min|h|hr|d))*$/, expect(TIME_SPAN)).optional(),
    onFailure: z.string(expect('a shell command run when a nightly fails')).regex(/^[^\n]+$/, expect('a shell command on one line')).optional(),
    report: path('the path of the JSON report, e.g. "/var/lib/armlab/nightly.json"').optional(),
    metrics: path('the path of the Prometheus textfile, e.g. "/var/lib/prometheus/node-exporter/armlab.prom"').regex(/\.prom$/, expect('a path ending in .prom (node_exporter reads only those)')).optional(),
  },
  expect('a mapping with schedule, randomizedDelay, onFailure, report, metrics'),
);

export const inventorySchema = z.strictObject(
  {
    cluster: label(`the cluster name, ${NAME}`),
    connection: connectionSchema.optional(),
    nodes: z.array(nodeSchema, expect('a list of nodes')).min(1, expect('a list of at least one node')),
    k3s: k3sSchema.optional(),
    images: imagesSchema.optional(),
    cni: cniSchema.optional(),
    nightly: nightlySchema.optional(),
  },
  expect('a mapping with cluster, connection, nodes, k3s, images, cni, nightly'),
);

export type RawInventory = z.infer<typeof inventorySchema>;
export type Role = (typeof ROLES)[number];
