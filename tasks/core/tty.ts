/**
 * Reading a secret from the terminal: no echo, one prompt at a time (nodes are
 * worked on in parallel, but there is one person at the keyboard).
 */

let queue: Promise<unknown> = Promise.resolve();

/** Ask on stderr, read a line from the terminal without echo; null when stdin is not a terminal or on Ctrl-D. */
export function askHidden(prompt: string): Promise<string | null> {
  const asked = queue.then(() => readHidden(prompt));
  queue = asked.catch(() => undefined);
  return asked;
}

function readHidden(prompt: string): Promise<string | null> {
  const input = process.stdin;
  if (!input.isTTY) return Promise.resolve(null);
  return new Promise((resolve) => {
    process.stderr.write(prompt);
    input.setRawMode(true);
    input.setEncoding('utf8');
    input.resume();
    let value = '';
    const finish = (answer: string | null) => {
      input.removeListener('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      resolve(answer);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish(value);
        if (ch === '\u0004') return finish(null);
        if (ch === '\u0003') {
          // Raw mode swallows Ctrl-C: deliver it as the terminal would have.
          finish(null);
          process.kill(process.pid, 'SIGINT');
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    input.on('data', onData);
  });
}
