import { SPEC_DIGEST_ANNOTATION } from './manifests.ts';

/**
 * Pure: is a DaemonSet or Deployment rolled out (from `kubectl get -o json`).
 */
export interface Rollout {
  done: boolean;
  /** e.g. "2/3 ready, 3/3 updated" */
  summary: string;
}

interface WorkloadJson {
  metadata?: { generation?: number; annotations?: Record<string, string> };
  spec?: { replicas?: number };
  status?: {
    observedGeneration?: number;
    desiredNumberScheduled?: number;
    numberReady?: number;
    updatedNumberScheduled?: number;
    readyReplicas?: number;
    updatedReplicas?: number;
  };
}

/**
 * `specDigest`: the digest armlab rendered on the workload (manifests.ts). Until
 * the API's object carries it, k3s has not applied the manifest yet, and the
 * status is the old workload's, however rolled out it looks.
 */
export function rolloutOf(kind: 'DaemonSet' | 'Deployment', json: string, specDigest?: string): Rollout {
  const w = JSON.parse(json) as WorkloadJson;
  if (specDigest && w.metadata?.annotations?.[SPEC_DIGEST_ANNOTATION] !== specDigest) {
    return { done: false, summary: 'the manifest is not applied yet (k3s reads its manifests folder every 15 s)' };
  }
  const s = w.status ?? {};
  const observed = (s.observedGeneration ?? 0) >= (w.metadata?.generation ?? 1);
  const [want, ready, updated] =
    kind === 'DaemonSet' ? [s.desiredNumberScheduled ?? 0, s.numberReady ?? 0, s.updatedNumberScheduled ?? 0] : [w.spec?.replicas ?? 1, s.readyReplicas ?? 0, s.updatedReplicas ?? 0];
  const done = observed && want > 0 && ready === want && updated === want;
  return { done, summary: `${ready}/${want} ready, ${updated}/${want} updated${observed ? '' : ', spec change not yet seen by the controller'}` };
}
