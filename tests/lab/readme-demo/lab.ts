/**
 * The demo lab both parts of tests/lab/readme-demo.test.ts run on: 3 armhf hosts from
 * `lab:up --demo` (the k3s STAND-IN release, the fixture upstreams through
 * source mirrors, the lab's own Docker Engine), its images cache seeded from
 * the image test's build of the same fixtures when that ran before in this run
 * (tests/helpers/shared-images.ts), else built by the first bootstrap.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { seedFixtureImages } from '../../helpers/shared-images.ts';
import { makeTestDir, startTestLab, type TestLab } from '../../helpers/lab.ts';

export const DEMO_NODES = ['pi1', 'pi2', 'pi3'];

/** Filled in by `startDemoLab`, in the suite's `before`; the parts read it in their tests. */
export interface DemoLab {
  lab: TestLab;
  /** A scratch folder of this run: the images cache, the kubeconfig, the nightly's report. */
  work: string;
  /** Whether the images cache started from the image test's build. */
  seeded: boolean;
  /** Set by the README's first bootstrap once it passed: the nightly's tests need a bootstrapped lab. */
  bootstrapped?: boolean;
}

export async function startDemoLab(demo: Partial<DemoLab>): Promise<void> {
  demo.work = await makeTestDir();
  // The demo's fixtures are made byte for byte as the image test's: the same input hashes.
  demo.seeded = await seedFixtureImages(join(demo.work, 'cache'));
  demo.lab = await startTestLab(DEMO_NODES.map((name) => ({ name, userland: 'armhf' as const })), { demo: true });
}

export async function stopDemoLab(demo: Partial<DemoLab>): Promise<void> {
  await demo.lab?.down();
  if (demo.work) await rm(demo.work, { recursive: true, force: true });
}
