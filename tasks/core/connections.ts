/** A run's SSH connections to the nodes, one per node (ssh.ts). */
import { Connection, type SessionOptions } from './ssh.ts';
import type { NodeSpec } from '../inventory/types.ts';

/**
 * The run's connections: opened lazily, once per node, closed together. A
 * pool shared by several commands (bootstrap's steps) is closed only by its
 * owner: closeAll() from a step leaves it open for the next step.
 */
export class Connections {
  private readonly open = new Map<string, Promise<Connection>>();
  constructor(
    private readonly options: SessionOptions = {},
    readonly shared = false,
  ) {}

  /** Drop a node's connection (it rebooted); the next get() opens a new one. */
  async forget(node: NodeSpec): Promise<void> {
    const conn = this.open.get(node.name);
    this.open.delete(node.name);
    if (conn) (await conn.catch(() => null))?.close();
  }

  async get(node: NodeSpec): Promise<Connection> {
    const known = this.open.get(node.name);
    // A shared pool lives for many steps: one that dropped meanwhile is opened anew.
    if (known && !(await known.then((c) => c.isLost, () => true))) return known;
    if (known && this.open.get(node.name) === known) await this.forget(node);
    let conn = this.open.get(node.name);
    if (!conn) {
      conn = Connection.open(node, this.options);
      conn.catch(() => this.open.delete(node.name));
      this.open.set(node.name, conn);
    }
    return conn;
  }

  /** Close every connection, unless the pool is shared (then its owner's dispose() does). */
  async closeAll(): Promise<void> {
    if (!this.shared) await this.dispose();
  }

  async dispose(): Promise<void> {
    const all = await Promise.allSettled([...this.open.values()]);
    for (const r of all) if (r.status === 'fulfilled') r.value.close();
    this.open.clear();
  }
}
