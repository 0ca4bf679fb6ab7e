// waitUntil: poll a condition until a deadline (nothing in the harness sleeps in place of a condition).

/** Polls `condition` (sync or async) every `interval` ms until it returns a truthy value, which
 * it returns; throws `message` (plus the last error) past `timeout` ms. An error thrown with
 * `fatal: true` ends the wait at once (a process that exited will not become ready). */
export async function waitUntil(condition, { timeout = 10_000, interval = 50, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let lastError;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (err) {
      if (err?.fatal) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${message}${lastError ? `: ${lastError}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** An error that ends a `waitUntil` at once (e.g. the process it waits for exited). */
export function fatalError(message) {
  return Object.assign(new Error(message), { fatal: true });
}
