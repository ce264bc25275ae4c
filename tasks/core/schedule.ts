/**
 * Work in dependency order, several at a time: each item starts once the
 * items it names have settled (whatever their outcome: the item decides what
 * a failed dependency means), with at most `limit` running at once.
 */
export interface ScheduleOptions<T> {
  key: (item: T) => string;
  /** Keys of the items this one waits for; keys of no item are ignored. */
  after: (item: T) => string[];
  limit: number;
}

/** `items` in dependency order (every item after those it waits for); results in the same order. */
export async function runInDependencyOrder<T, R>(items: T[], opts: ScheduleOptions<T>, work: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  let free = Math.max(1, Math.floor(opts.limit));
  const queued: (() => void)[] = [];
  const slot = () => (free > 0 ? (free--, Promise.resolve()) : new Promise<void>((resolve) => queued.push(resolve)));
  const release = () => {
    const next = queued.shift();
    if (next) next();
    else free++;
  };
  const started = new Map<string, Promise<R>>();
  const runs = items.map((item) => {
    const deps = opts.after(item).flatMap((k) => started.get(k) ?? []);
    const run = Promise.allSettled(deps).then(async () => {
      await slot();
      try {
        return await work(item);
      } finally {
        release();
      }
    });
    started.set(opts.key(item), run);
    return run;
  });
  return Promise.allSettled(runs);
}

/** Work queued per key: each call starts once the earlier calls with its key have settled (one writer of a file or folder at a time). */
export function queuePerKey(): <R>(key: string, work: () => Promise<R>) => Promise<R> {
  const tails = new Map<string, Promise<unknown>>();
  return (key, work) => {
    const run = (tails.get(key) ?? Promise.resolve()).catch(() => undefined).then(work);
    tails.set(key, run);
    return run;
  };
}
