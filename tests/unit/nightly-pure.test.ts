/**
 * The nightly's pure parts: facts and reasons in words, the decision, the
 * report against its published JSON Schema (checked by ajv, not by the zod
 * schema it came from), the Prometheus textfile (by Debian's promtool), and
 * the systemd units (by systemd-analyze verify).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parseAptShow } from '../../tasks/images/debian-index.ts';
import { parseDpkgStatus } from '../../tasks/images/debian.ts';
import { debFact, packageChanges, reasonsFor, resolvedHash, type ResolvedInputs } from '../../tasks/images/facts.ts';
import type { LockEntry, LockFile } from '../../tasks/images/lock.ts';
import type { Recipe } from '../../tasks/images/recipe.ts';
import { parseInventory } from '../../tasks/inventory/load.ts';
import { decide } from '../../tasks/nightly/decide.ts';
import { outcomeOf, previousSuccessIn, renderMetrics, renderSummary, reportJsonSchema, type NightlyReport } from '../../tasks/nightly/report.ts';
import type { Resolution } from '../../tasks/nightly/resolve.ts';
import { envAssignment, execWord, onCalendarOf, renderUnits } from '../../tasks/nightly/units.ts';

const git = (commit: string, ref = 'v0.3.0') => ({ kind: 'git' as const, url: 'https://github.com/openconfig/kne.git', ref, commit });
const inputs = (over: Partial<ResolvedInputs> = {}): ResolvedInputs => ({ files: 'f1', patches: 'p1', sources: [git('577a223fd2a51b6866ef5a14a04e32763b3c7632')], base: null, stages: [], platform: 'linux/arm/v7', ...over });

test('facts: .deb names as name=version, package changes and source moves in words', () => {
  assert.equal(debFact('frr_8.4.4-1.1~deb12u1_armhf.deb'), 'frr=8.4.4-1.1~deb12u1');
  assert.equal(debFact('libc6_2.36-9%3a1_armhf.deb'), 'libc6=2.36-9:1');
  assert.deepEqual(packageChanges(['frr=8.4.4-1.1~deb12u1', 'libyang2=2.1.30-2', 'old=1'], ['frr=8.4.4-1.1~deb12u2', 'libyang2=2.1.30-2', 'new=2']), [
    'frr 8.4.4-1.1~deb12u1 → 8.4.4-1.1~deb12u2',
    'new 2 (new)',
    'old (gone)',
  ]);
  const before = inputs();
  assert.deepEqual(reasonsFor(before, before, { stages: [] }), []);
  assert.deepEqual(reasonsFor(before, inputs({ sources: [git('1234567890abcdef1234567890abcdef12345678')] }), { stages: [] }), ['git https://github.com/openconfig/kne.git v0.3.0 577a223f → 12345678']);
  assert.deepEqual(reasonsFor(before, inputs({ sources: [git('1234567890abcdef1234567890abcdef12345678', 'v0.3.1')] }), { stages: [] }), [
    'git https://github.com/openconfig/kne.git v0.3.0 577a223f → v0.3.1 12345678',
  ]);
  const debs = (v: string) => inputs({ sources: [{ kind: 'debs', suite: 'bookworm', arch: 'armhf', packages: [`frr=${v}`] }], base: 'b1' });
  assert.deepEqual(reasonsFor(debs('8.4.4-1.1~deb12u1'), { ...debs('8.4.4-1.1~deb12u2'), base: 'b2', files: 'f2' }, { base: 'base', stages: [] }), [
    'recipe files changed',
    'apt frr 8.4.4-1.1~deb12u1 → 8.4.4-1.1~deb12u2',
    'base base changed',
  ]);
  assert.notEqual(resolvedHash(before), resolvedHash(inputs({ base: 'x' })));
});

test('dpkg status and apt-cache show: installed packages and candidate versions', () => {
  const status = 'Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u9\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: apt\nStatus: install ok installed\nArchitecture: armhf\nVersion: 2.6.1\n';
  assert.deepEqual(parseDpkgStatus(status), ['apt=2.6.1', 'libc6=2.36-9+deb12u9']);
  const show = 'Package: frr\nVersion: 8.4.4-1.1~deb12u2\nArchitecture: armhf\n\nPackage: frr\nVersion: 8.4.4-1.1~deb12u1\n\nPackage: jq\nVersion: 1.6-2.1\n';
  assert.deepEqual([...parseAptShow(show)], [['frr', '8.4.4-1.1~deb12u2'], ['jq', '1.6-2.1']]);
});

const recipe = (name: string, base?: string): Recipe =>
  ({ name, tag: '1', dir: `/x/${name}`, image: `armlab/${name}:1`, files: ['Dockerfile'], patches: [], verify: { binary: '/bin/sh' }, ...(base ? { base } : {}) }) as Recipe;
const entry = (name: string, r: ResolvedInputs): LockEntry => ({
  name, image: `armlab/${name}:1`, imageId: 'id', configDigest: `sha256:${name}`, platform: 'linux/arm/v7', target: 'nodes', size: 1, archive: `/a/${name}.tar`, archiveSha256: 'x', inputHash: 'i', builtAt: '2026-12-01T03:00:00.000Z', resolved: r, resolvedHash: resolvedHash(r),
});

test('decide: exactly what moved and what is built on it, each with its reasons; a held-back build is not made again', () => {
  const baseIn = inputs({ sources: [{ kind: 'debootstrap', suite: 'bookworm', arch: 'armhf', packages: ['libc6=1'] }] });
  const frrIn = inputs({ base: resolvedHash(baseIn), sources: [{ kind: 'debs', suite: 'bookworm', arch: 'armhf', packages: ['frr=1'] }] });
  const meshIn = inputs({ base: resolvedHash(baseIn) });
  const lock: LockFile = { version: 1, images: { base: entry('base', baseIn), frr: entry('frr', frrIn), meshnet: entry('meshnet', meshIn) } };
  const ordered = [recipe('base'), recipe('frr', 'base'), recipe('meshnet', 'base'), recipe('quagga', 'base')];
  const resolved = (m: Record<string, ResolvedInputs>) => new Map<string, Resolution>(Object.entries(m).map(([k, v]) => [k, { inputs: v, hash: resolvedHash(v) }]));
  const quaggaIn = inputs({ base: resolvedHash(baseIn), sources: [{ kind: 'tarball', url: '/q.tgz', sha256: 'a'.repeat(64) }] });

  const still = decide(ordered, { ...lock, images: { ...lock.images, quagga: entry('quagga', quaggaIn) } }, resolved({ base: baseIn, frr: frrIn, meshnet: meshIn, quagga: quaggaIn }), () => true);
  assert.deepEqual(still.map((d) => [d.name, d.rebuild, d.reasons]), [['base', false, []], ['frr', false, []], ['meshnet', false, []], ['quagga', false, []]]);

  // frr's package moved: frr alone. A missing archive, a never-built image and an unresolvable one, each said.
  const frrNew = { ...frrIn, sources: [{ kind: 'debs' as const, suite: 'bookworm', arch: 'armhf', packages: ['frr=2'] }] };
  const some = decide(ordered, lock, new Map([...resolved({ base: baseIn, frr: frrNew, meshnet: meshIn }), ['quagga', { inputs: null, hash: null, error: 'cannot download' }]]), (p) => p !== '/a/meshnet.tar');
  assert.deepEqual(some.map((d) => [d.name, d.rebuild, d.reasons, d.error]), [
    ['base', false, [], undefined],
    ['frr', true, ['apt frr 1 → 2'], undefined],
    ['meshnet', true, ['archive /a/meshnet.tar missing'], undefined],
    ['quagga', false, [], 'cannot download'],
  ]);

  // The base moved: base and everything built on it.
  const baseNew = { ...baseIn, sources: [{ kind: 'debootstrap' as const, suite: 'bookworm', arch: 'armhf', packages: ['libc6=2'] }] };
  const onBase = { frr: { ...frrIn, base: resolvedHash(baseNew) }, meshnet: { ...meshIn, base: resolvedHash(baseNew) } };
  const all = decide(ordered.slice(0, 3), lock, resolved({ base: baseNew, ...onBase }), () => true);
  assert.deepEqual(all.map((d) => [d.name, d.rebuild, d.reasons]), [['base', true, ['apt libc6 1 → 2']], ['frr', true, ['base base changed']], ['meshnet', true, ['base base changed']]]);

  const held = decide(ordered.slice(0, 2), { ...lock, heldBack: { frr: [{ resolvedHash: resolvedHash(frrNew), build: 'B', at: 'T' }] } }, resolved({ base: baseIn, frr: frrNew }), () => true);
  assert.deepEqual(held[1]!.rebuild, false);
  assert.match(held[1]!.reasons[0]!, /^held back: build B of these inputs was rolled back by images:rollback at T/);

  // A held-back base stays what it is: what is built on it is judged against that build, and stays too.
  const heldBase = decide(ordered.slice(0, 3), { ...lock, heldBack: { base: [{ resolvedHash: resolvedHash(baseNew), build: 'A', at: 'T' }] } }, resolved({ base: baseNew, ...onBase }), () => true);
  assert.deepEqual(heldBase.map((d) => [d.name, d.rebuild]), [['base', false], ['frr', false], ['meshnet', false]]);
});

const sampleReport = (over: Partial<NightlyReport> = {}): NightlyReport => ({
  version: 1, kind: 'nightly', check: false, inventory: '/inv/lab.yaml', cluster: 'pilab', host: 'spare', startedAt: '2026-12-01T03:00:00.000Z', finishedAt: '2026-12-01T03:10:00.000Z', durationSeconds: 600, outcome: 'changed', tookOverLockFrom: { host: 'spare', pid: 4242, startedAt: '2026-11-30T03:00:00.000Z' },
  images: [{ name: 'frr', image: 'armlab/frr:8.4.4-1', oldInputHash: 'a', newInputHash: 'b', reasons: ['apt frr 1 → 2'], result: 'rolled out', build: '20261201T030500Z-3fa2c1d9', buildSeconds: 312.5 }],
  nodes: [{ name: 'pi1', imported: ['armlab/frr:8.4.4-1'], rolledBack: [] }],
  ...over,
});

test('report: the published JSON Schema is the zod schema\'s, and reports validate against it (ajv)', () => {
  const published = JSON.parse(readFileSync(new URL('../../templates/nightly/report.schema.json', import.meta.url), 'utf8'));
  assert.deepEqual(published, reportJsonSchema(), 'templates/nightly/report.schema.json is stale: run npm run nightly:schema');
  const validate = new Ajv2020({ strict: true }).compile(published);
  assert.ok(validate(sampleReport()), JSON.stringify(validate.errors));
  assert.ok(!validate({ ...sampleReport(), outcome: 'fine' }));
  assert.ok(!validate({ ...sampleReport(), images: [{ name: 'frr' }] }));
  assert.equal(outcomeOf('nightly', sampleReport().images, undefined), 'changed');
  assert.equal(outcomeOf('nightly', [{ ...sampleReport().images[0]!, result: 'unchanged' }], undefined), 'no change');
  assert.equal(outcomeOf('nightly', [{ ...sampleReport().images[0]!, result: 'rolled back' }], undefined), 'failed');
  assert.equal(outcomeOf('rollback', [{ ...sampleReport().images[0]!, result: 'rolled back' }], undefined), 'changed');
  assert.match(renderSummary(sampleReport()), /^nightly for pilab \(\/inv\/lab\.yaml\): changed in 600\.0 s\ntook over a stale lock from PID 4242 on spare[^\n]*\n {2}frr {8}rolled out \(313 s\): apt frr 1 → 2\n {2}node pi1: imported armlab\/frr:8\.4\.4-1\n$/);
});

test('metrics: node_exporter textfile format (promtool check metrics), the last success kept through a failed night', () => {
  const ok = renderMetrics(sampleReport(), null);
  assert.match(ok, /^armlab_nightly_last_success_timestamp_seconds\{cluster="pilab"\} 1796094600$/m);
  assert.match(ok, /^armlab_nightly_images_rebuilt\{cluster="pilab"\} 1$/m);
  assert.match(ok, /^armlab_nightly_failed\{cluster="pilab"\} 0$/m);
  const failed = renderMetrics(sampleReport({ outcome: 'failed', finishedAt: '2026-12-02T03:10:00.000Z' }), previousSuccessIn(ok));
  assert.match(failed, /^armlab_nightly_last_success_timestamp_seconds\{cluster="pilab"\} 1796094600$/m);
  assert.match(failed, /^armlab_nightly_last_run_timestamp_seconds\{cluster="pilab"\} 1796181000$/m);
  assert.match(failed, /^armlab_nightly_failed\{cluster="pilab"\} 1$/m);
  for (const text of [ok, failed]) {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  }
});

test('systemd units: schedule, quoting of paths and the failure command, and systemd-analyze verify passes them', () => {
  assert.equal(onCalendarOf('03:00'), '*-*-* 03:00:00');
  assert.equal(onCalendarOf('3:30'), '*-*-* 03:30:00');
  assert.equal(onCalendarOf('Mon..Fri 02:30'), 'Mon..Fri 02:30');
  assert.equal(execWord('/srv/armlab/inventory/lab.yaml'), '/srv/armlab/inventory/lab.yaml');
  assert.equal(execWord('/srv/my lab/$HOME/100%.yaml'), '"/srv/my lab/$$HOME/100%%.yaml"');
  assert.equal(envAssignment('HOME', '/home/p "q"'), '"HOME=/home/p \\"q\\""');
  const dir = mkdtempSync(join(tmpdir(), 'armlab-units-'));
  const inventoryPath = join(dir, 'my lab.yaml');
  const text = 'cluster: pilab\nnodes:\n  - {name: pi1, address: 10.0.0.1, role: server}\nnightly:\n  schedule: "02:30"\n  randomizedDelay: 45min\n  onFailure: \'echo "nightly $ARMLAB_NIGHTLY_UNIT failed" | logger -t armlab\'\n';
  writeFileSync(inventoryPath, text);
  const inventory = parseInventory(text, inventoryPath);
  const checkout = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
  const units = renderUnits({ inventory, inventoryPath, checkout, node: process.execPath, home: '/root', report: join(dir, 'report.json'), environment: { ARMLAB_CACHE: '/srv/armlab cache' } });
  assert.deepEqual(units.map((u) => u.name), ['armlab-nightly-pilab.service', 'armlab-nightly-pilab.timer', 'armlab-nightly-pilab-failure.service']);
  const [service, timer, failure] = units.map((u) => u.text) as [string, string, string];
  assert.match(timer, /^OnCalendar=\*-\*-\* 02:30:00$/m);
  for (const line of ['Persistent=true', 'RandomizedDelaySec=45min', 'AccuracySec=1us', 'After=time-sync.target', 'Unit=armlab-nightly-pilab.service', 'WantedBy=timers.target']) assert.ok(timer.split('\n').includes(line), line);
  assert.ok(service.includes(`ExecStart=${process.execPath} --import tsx ${checkout}/tasks/cli.ts nightly --inventory "${inventoryPath}"\n`), service);
  assert.match(service, /^After=network-online\.target time-sync\.target$/m);
  assert.match(service, /^Environment="ARMLAB_CACHE=\/srv\/armlab cache"$/m, 'the installing shell\'s cache is the night\'s');
  assert.match(service, /^OnFailure=armlab-nightly-pilab-failure\.service$/m);
  assert.match(failure, /^ExecStart=\/bin\/sh -c "echo \\"nightly \$\$ARMLAB_NIGHTLY_UNIT failed\\" \| logger -t armlab"$/m);
  for (const u of units) writeFileSync(join(dir, u.name), u.text);
  const verify = spawnSync('systemd-analyze', ['verify', '--man=no', ...units.map((u) => u.name)], { cwd: dir, encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(verify.status, 0, verify.stdout + verify.stderr);
  // The schedule as systemd itself reads it.
  const shown = execFileSync('systemd-analyze', ['calendar', onCalendarOf('02:30')], { encoding: 'utf8' });
  assert.match(shown, /Normalized form: \*-\*-\* 02:30:00/);
});
