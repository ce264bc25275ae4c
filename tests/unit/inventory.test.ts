import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProblemsError } from '../../tasks/core/errors.ts';
import { loadInventory, parseInventory } from '../../tasks/inventory/load.ts';
import { absoluteTarget, fetchUrlOf, parseMirrorFlags } from '../../tasks/images/source-mirror.ts';

function problems(source: string): string[] {
  try {
    parseInventory(source, 'inventory/x.yaml', '/inv', '/home/u');
  } catch (err) {
    assert.ok(err instanceof ProblemsError, String(err));
    return err.message.split('\n');
  }
  assert.fail('expected the inventory to be refused');
}

test('the example inventory parses into a typed, normalized object', async () => {
  const inv = await loadInventory('inventory/example.yaml');
  assert.equal(inv.cluster, 'pilab');
  assert.deepEqual(inv.nodes.map((n) => [n.name, n.role]), [['pi1', 'server'], ['pi2', 'agent'], ['pi3', 'agent'], ['pi4', 'builder']]);
  const pi1 = inv.nodes[0]!;
  assert.equal(pi1.user, 'pi');
  assert.equal(pi1.port, 22);
  assert.match(pi1.privateKey, /\/\.ssh\/id_ed25519$/);
  assert.equal(pi1.connectTimeoutMs, 15_000);
  assert.deepEqual(pi1.labels, { rack: 'top' });
  assert.equal(inv.k3s.version, 'v1.31.12+k3s1');
  assert.deepEqual(inv.images, { builder: 'pi4', platform: 'linux/arm/v7', sourceMirrors: {} });
  assert.equal(inv.cni.linkType, 'VXLAN');
});

test('defaults fill what a minimal inventory leaves out; paths resolve against the file', () => {
  const inv = parseInventory('cluster: lab\nconnection:\n  privateKey: keys/id\nnodes:\n  - {name: pi1, address: 10.0.0.1, role: server, user: root, port: 2222}\n', 'x.yaml', '/inv', '/home/u');
  const n = inv.nodes[0]!;
  assert.equal(n.user, 'root');
  assert.equal(n.port, 2222);
  assert.equal(n.privateKey, '/inv/keys/id');
  assert.equal(n.knownHosts, '/home/u/.ssh/known_hosts');
  assert.equal(n.become, true);
  assert.equal(n.commandTimeoutMs, 600_000);
  assert.equal(inv.k3s.version, 'stable');
  assert.equal(inv.cni.linkType, 'VXLAN');
});

test('every problem of a broken inventory is reported at once, with file, line and field', async () => {
  try {
    await loadInventory('tests/fixtures/inventory/broken.yaml');
    assert.fail('expected a refusal');
  } catch (err) {
    assert.ok(err instanceof ProblemsError);
    const f = 'tests/fixtures/inventory/broken.yaml';
    assert.deepEqual(err.message.split('\n'), [
      `${f}:1 cluster: got "Pi_Lab", expected the cluster name, a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters, e.g. "pi1")`,
      `${f}:2 conection: unknown key; did you mean "connection"?`,
      `${f}:4 nodes: no node has role "server"; k3s needs at least one server (set role: server on one node)`,
      `${f}:7 nodes[0].role: got "master", expected one of "server", "agent", "builder"`,
      `${f}:8 nodes[1].address: is required: expected an IPv4/IPv6 address or a host name, e.g. "192.168.1.101"`,
      `${f}:9 nodes[1].adress: unknown key; did you mean "address"?`,
      `${f}:11 nodes[2].name: "pi2" is already used by nodes[1]; every node needs a unique name`,
      `${f}:12 nodes[2].address: "192.168.1.101" is already used by nodes[0]; every node needs a unique address`,
      `${f}:15 nodes[2].labels.rack: got number 3, expected a label value string (quote numbers and booleans)`,
      `${f}:16 nodes[2].port: got number 70000, expected a TCP port from 1 to 65535`,
      `${f}:18 images.builder: names no node: "pi5" is not in nodes; did you mean "pi1"?`,
      `${f}:20 cni.linkType: got "vxlan", expected "VXLAN" or "GRPC"`,
    ]);
  }
});

test('table of single problems, each message exact', () => {
  const cases: [string, string[]][] = [
    ['', ['inventory/x.yaml:1 is empty; expected a mapping with cluster and nodes (see inventory/example.yaml)']],
    ['cluster: lab\nnodes: [\n', ['inventory/x.yaml:3 YAML syntax: deficient indentation']],
    ['- a\n', ['inventory/x.yaml:1 got a list, expected a mapping with cluster, connection, nodes, k3s, images, cni, nightly']],
    ['cluster: lab\nnodes: []\n', ['inventory/x.yaml:2 nodes: got a list, expected a list of at least one node']],
    [
      'cluster: lab\nnodes:\n  - name: Pi1\n    address: "10.0.0.1 "\n    role: server\n',
      [
        'inventory/x.yaml:3 nodes[0].name: got "Pi1", expected a DNS-1123 label (lowercase letters, digits and "-", at most 63 characters, e.g. "pi1")',
        'inventory/x.yaml:4 nodes[0].address: got "10.0.0.1 ", expected an IPv4/IPv6 address or a host name, e.g. "192.168.1.101"',
      ],
    ],
    [
      'cluster: lab\nnodes:\n  - {name: pi1, address: 10.0.0.1, role: server}\n  - {name: pi2, address: 10.0.0.2, role: agent}\nimages:\n  builder: pi2\n',
      ['inventory/x.yaml:6 images.builder: "pi2" has role "agent"; the builder must be a node with role "builder"'],
    ],
    [
      'cluster: lab\nnodes:\n  - {name: pi1, address: 10.0.0.1, role: server}\nk3s:\n  version: 1.31\n  extra: 1\n',
      [
        'inventory/x.yaml:5 k3s.version: got number 1.31, expected an exact k3s version such as "v1.31.12+k3s1" or a channel such as "stable"',
        'inventory/x.yaml:6 k3s.extra: unknown key; expected one of: version, mirror, config',
      ],
    ],
    [
      'cluster: lab\nconnection:\n  become: yes\n  connectTimeout: -1\nnodes:\n  - {name: pi1, address: 10.0.0.1, role: server}\n',
      [
        'inventory/x.yaml:3 connection.become: got "yes", expected true or false (run privileged commands through sudo)',
        'inventory/x.yaml:4 connection.connectTimeout: got number -1, expected a number of seconds, e.g. 30',
      ],
    ],
    [
      'cluster: lab\nnodes:\n  - {name: pi1, address: 10.0.0.1, role: server}\nk3s:\n  config:\n    token: abc\n    node-label: [a=b]\n',
      [
        'inventory/x.yaml:6 k3s.config.token: is set by armlab (node names, joins and tokens follow the inventory); remove it',
        'inventory/x.yaml:7 k3s.config.node-label: is set by armlab from nodes[].labels; put labels there',
      ],
    ],
    ['cluster: lab\ncluster: lab2\nnodes: []\n', ['inventory/x.yaml:2 YAML syntax: duplicated mapping key']],
  ];
  for (const [source, expected] of cases) assert.deepEqual(problems(source), expected, source);
});

test('a missing inventory file names the path and the fix', async () => {
  await assert.rejects(loadInventory('inventory/nope.yaml'), {
    message: 'inventory/nope.yaml no such file; pass --inventory inventory/<file>.yaml',
  });
});

test('source mirrors: paths resolve against the inventory (a trailing slash kept), URLs stay; flags parse; the longest prefix wins', () => {
  const inv = parseInventory(
    'cluster: lab\nnodes:\n  - {name: pi1, address: 10.0.0.1, role: server}\nimages:\n  sourceMirrors:\n    "https://github.com/": mirror/github/\n    "https://github.com/Quagga/quagga/releases/": "http://10.0.0.9/quagga/"\n',
    'x.yaml', '/inv', '/home/u',
  );
  assert.deepEqual(inv.images.sourceMirrors, { 'https://github.com/': '/inv/mirror/github/', 'https://github.com/Quagga/quagga/releases/': 'http://10.0.0.9/quagga/' });
  const mirrors = Object.entries(inv.images.sourceMirrors).map(([prefix, target]) => ({ prefix, target }));
  assert.equal(fetchUrlOf('https://github.com/openconfig/kne.git', mirrors), '/inv/mirror/github/openconfig/kne.git');
  assert.equal(fetchUrlOf('https://github.com/Quagga/quagga/releases/download/quagga-1.2.4/quagga-1.2.4.tar.gz', mirrors), 'http://10.0.0.9/quagga/download/quagga-1.2.4/quagga-1.2.4.tar.gz');
  assert.equal(fetchUrlOf('https://example.org/x.tar.gz', mirrors), 'https://example.org/x.tar.gz');
  assert.deepEqual(parseMirrorFlags(['https://github.com/openconfig/kne.git=/srv/kne.git']), [{ prefix: 'https://github.com/openconfig/kne.git', target: '/srv/kne.git' }]);
  assert.throws(() => parseMirrorFlags(['/srv/kne.git']), /--source-mirror: got "\/srv\/kne\.git", expected PREFIX=TARGET/);
  assert.deepEqual(problems('cluster: lab\nnodes:\n  - {name: pi1, address: 10.0.0.1, role: server}\nimages:\n  sourceMirrors:\n    "https://github.com/": ""\n'), [
    'inventory/x.yaml:6 images.sourceMirrors.https://github.com/: got "", expected a local path or URL to fetch from instead',
  ]);
});

test('source mirror targets: URLs and scp-style git addresses as they are; flag paths absolute against the working directory', () => {
  assert.equal(absoluteTarget('git@mirror.lan:github/', '/inv'), 'git@mirror.lan:github/');
  assert.equal(absoluteTarget('file:///srv/x', '/inv'), 'file:///srv/x');
  assert.equal(absoluteTarget('srv/mirror/', '/inv'), '/inv/srv/mirror/');
  assert.deepEqual(parseMirrorFlags(['https://github.com/=rel/dir/']), [{ prefix: 'https://github.com/', target: `${process.cwd()}/rel/dir/` }]);
});

test('k3s.mirror: http(s) or an absolute file:/// folder; images.recipes, patches and engine normalized', () => {
  const base = 'cluster: lab\nnodes: [{name: pi1, address: 10.0.0.1, role: server}]\n';
  const expected = 'a base URL for k3s release artefacts, e.g. "https://mirror.example/k3s", or a local folder as "file:///srv/k3s"';
  assert.deepEqual(problems(`${base}k3s: {mirror: "file:k3s"}\n`), [`inventory/x.yaml:3 k3s.mirror: got "file:k3s", expected ${expected}`]);
  assert.deepEqual(problems(`${base}k3s: {mirror: "ftp://m/k3s"}\n`), [`inventory/x.yaml:3 k3s.mirror: got "ftp://m/k3s", expected ${expected}`]);
  assert.deepEqual(problems(`${base}images: {engine: "/var/run/docker.sock"}\n`), [
    'inventory/x.yaml:3 images.engine: got "/var/run/docker.sock", expected the Docker Engine that builds, as DOCKER_HOST takes it, e.g. "unix:///var/run/docker.sock"',
  ]);
  const inv = parseInventory(`${base}k3s: {mirror: "file:///srv/k3s"}\nimages: {recipes: my-images, patches: ~/p, engine: "unix:///run/d.sock"}\n`, 'x.yaml', '/inv', '/home/u');
  assert.equal(inv.k3s.mirror, 'file:///srv/k3s');
  assert.deepEqual([inv.images.recipes, inv.images.patches, inv.images.engine], ['/inv/my-images', '/home/u/p', 'unix:///run/d.sock']);
});
