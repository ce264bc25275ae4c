import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { renderSlimDpkgConfig, slimRootfs, SLIM_DPKG_CONFIG, UNSAFE_IO_CONFIG, UNSAFE_IO_TEXT } from '../../tasks/images/slim.ts';

test('slimRootfs removes docs, manual pages and translations, keeps copyright files and locale.alias, and writes the dpkg filter and the unsafe-io setting', async () => {
  const root = await mkdtemp(join(tmpdir(), 'armlab-slim-'));
  try {
    const files = ['usr/share/doc/dpkg/copyright', 'usr/share/doc/dpkg/changelog.Debian.gz', 'usr/share/doc/dpkg/examples/a.conf',
      'usr/share/man/man1/dpkg.1.gz', 'usr/share/locale/de/LC_MESSAGES/dpkg.mo', 'usr/share/locale/locale.alias', 'usr/share/info/dir',
      'usr/share/javascript/d3/d3.min.js', 'usr/bin/dpkg', 'etc/dpkg/dpkg.cfg'];
    for (const f of files) {
      await mkdir(dirname(join(root, f)), { recursive: true });
      await writeFile(join(root, f), f);
    }
    await symlink('dpkg', join(root, 'usr/share/doc/libdpkg-perl'));
    await slimRootfs(root);
    const kept = files.filter((f) => existsSync(join(root, f)));
    assert.deepEqual(kept, ['usr/share/doc/dpkg/copyright', 'usr/share/locale/locale.alias', 'usr/share/javascript/d3/d3.min.js', 'usr/bin/dpkg', 'etc/dpkg/dpkg.cfg']);
    for (const gone of ['usr/share/doc/dpkg/examples', 'usr/share/man/man1', 'usr/share/locale/de', 'usr/share/doc/libdpkg-perl']) assert.ok(!existsSync(join(root, gone)), gone);
    // The folders themselves stay: dpkg expects them, and a later package may put a kept file there.
    assert.ok(existsSync(join(root, 'usr/share/man')));
    assert.equal(await readFile(join(root, SLIM_DPKG_CONFIG), 'utf8'), renderSlimDpkgConfig());
    assert.match(await readFile(join(root, UNSAFE_IO_CONFIG), 'utf8'), /^force-unsafe-io$/m);
    assert.equal(await readFile(join(root, UNSAFE_IO_CONFIG), 'utf8'), UNSAFE_IO_TEXT);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('the dpkg filter lists every exclude before any include (the last matching pattern decides)', () => {
  const lines = renderSlimDpkgConfig().split('\n').filter((l) => l.startsWith('path-'));
  const firstInclude = lines.findIndex((l) => l.startsWith('path-include '));
  assert.ok(firstInclude > 0);
  assert.ok(lines.slice(firstInclude).every((l) => l.startsWith('path-include ')));
  assert.ok(lines.includes('path-exclude /usr/share/doc/*') && lines.includes('path-include /usr/share/doc/*/copyright'));
});
