/**
 * The README's demo lab, brought up and bootstrapped once for both of its
 * users (a lab and a bootstrap under emulation cost minutes each): the README's
 * first command (./readme-demo/readme.ts), then the nightly on the same lab
 * (./readme-demo/nightly.ts), then the README's later steps, which change the
 * lab for good (GRPC links, meshnet removed, lab:down). This file sorts after
 * images-upstream.test.ts, whose build of the same fixtures it starts from.
 */
import { after, before, describe } from 'node:test';
import { startDemoLab, stopDemoLab, type DemoLab } from './readme-demo/lab.ts';
import { nightlyTests } from './readme-demo/nightly.ts';
import { readmeBootstrapTests, readmeEndTests } from './readme-demo/readme.ts';

describe("the demo lab (3 armhf hosts, k3s stand-in release, fixture upstreams, the lab's own engine)", { timeout: 7_200_000 }, () => {
  const demo = {} as DemoLab;
  before(() => startDemoLab(demo));
  after(() => stopDemoLab(demo));

  describe("the README's first command: lab:up --demo and bootstrap on its inventory alone", () => readmeBootstrapTests(demo));
  describe('nightly on the demo lab (fixture upstreams as git repositories, Debian frozen)', () => nightlyTests(demo));
  describe("the README's first command, later steps: GRPC links, meshnet removed, lab:down", () => readmeEndTests(demo));
});
