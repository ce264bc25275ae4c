/**
 * Every rendered object checked against the Kubernetes OpenAPI schemas
 * (kubernetes-models' generated validators). An object of a kind armlab does
 * not know is a problem too: nothing unchecked goes to the server.
 */
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { Namespace, Service, ServiceAccount } from 'kubernetes-models/v1';

interface Validatable {
  validate(): void;
}

const MODELS: Record<string, new (data: never) => Validatable> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Service': Service,
  'apiextensions.k8s.io/v1/CustomResourceDefinition': CustomResourceDefinition,
  'rbac.authorization.k8s.io/v1/ClusterRole': ClusterRole,
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ClusterRoleBinding,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
};

/** One line per problem: `Kind/name: what is wrong`. */
export function schemaProblems(objects: Record<string, unknown>[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const key = `${String(o.apiVersion)}/${String(o.kind)}`;
    const name = `${String(o.kind)}/${String((o.metadata as { name?: string } | undefined)?.name ?? '?')}`;
    const Model = MODELS[key];
    if (!Model) {
      problems.push(`${name}: ${key} is not a kind armlab can validate`);
      continue;
    }
    try {
      new Model(o as never).validate();
    } catch (err) {
      problems.push(`${name}: ${(err as Error).message}`);
    }
  }
  return problems;
}
