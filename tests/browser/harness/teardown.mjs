// Teardown: the cleanups every resource registers, and the last resort for child processes.

const cleanups = [];
const children = new Set();

/** Tracks a running child process (a `node:child_process` child) for the last resort below. */
export function trackChild(child) {
  children.add(child);
}

/** Stops tracking `child` once it exited. */
export function untrackChild(child) {
  children.delete(child);
}

/** Registers `fn` to run at `teardown()` (last registered, first run); `label` names it in
 * `BROWSER_TEST_LOG` output. */
export function onTeardown(fn, label = fn.name || 'cleanup') {
  cleanups.push({ fn, label });
}

/**
 * Runs every registered cleanup (browsers, servers, services, Redis), newest first, and
 * rethrows the first error after all of them ran. Pass it to `after()`.
 */
export async function teardown() {
  const errors = [];
  while (cleanups.length > 0) {
    const { fn, label } = cleanups.pop();
    const started = Date.now();
    try {
      await fn();
    } catch (err) {
      errors.push(err);
    }
    if (process.env.BROWSER_TEST_LOG) process.stderr.write(`teardown: ${label} took ${Date.now() - started} ms\n`);
  }
  if (errors.length > 0) throw errors[0];
}

// Last resort when the test process ends without teardown (a crash, the runner's timeout):
// no child outlives it. Only our own children, by pid.
function killChildrenNow() {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.on('exit', killChildrenNow);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killChildrenNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
