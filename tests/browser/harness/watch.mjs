// watchPage: records everything that went wrong in a page, and fails a test on what it did not expect.

/** Every watched page with its records: `{page, records}`. */
const watched = [];

/** Every page `watchPage` watched so far, for `reportFailure`. */
export function watchedPages() {
  return watched;
}

function matcher(pattern) {
  if (typeof pattern === 'function') return pattern;
  if (pattern instanceof RegExp) return (s) => pattern.test(s);
  if (typeof pattern === 'string') return (s) => s.includes(pattern);
  throw new Error(`expectFailure: a string, RegExp or function, not ${pattern}`);
}

/**
 * Records, from now on, everything that went wrong in `page`:
 * - `console`: a console message of type `error` (`url`: where it was logged from);
 * - `pageerror`: an uncaught exception;
 * - `requestfailed`: a request that got no answer (`text`: Chromium's error, e.g.
 *   `net::ERR_FAILED` for a CORS block, `net::ERR_CONNECTION_REFUSED`);
 * - `response`: an HTTP answer with status >= 400.
 *
 * Each record is `{kind, url, text, status?, expected}`. A record is expected when a pattern
 * declared with `expectFailure` matches its `url` or its `text` (a string matches as a
 * substring; a RegExp or a predicate `(s) => boolean` as such).
 *
 * Returns:
 * - `expectFailure(pattern, { kinds, text })` → a handle `{matches, done()}`: only records of
 *   these `kinds` (default: all) whose `text` also matches `text` (default: any) are covered;
 *   `matches` lists the records it covered (so a test can check the failure it provoked
 *   happened, and how); `done()` stops expecting it (e.g. once a stopped service is back).
 *   A string pattern matches as a substring: end a base URL with `/` (`${imUrl}/`) so that it
 *   cannot match a longer port. Closing an EventSource shows as `requestfailed`
 *   `net::ERR_ABORTED`, a moment later: declare it, e.g.
 *   `expectFailure(`${gameUrl}/v1/events`, { kinds: ['requestfailed'], text: 'net::ERR_ABORTED' })`;
 * - `records`: every record; `problems()`: the unexpected ones;
 * - `waitFor(predicate, { timeout })`: the first record (expected or not) satisfying it;
 * - `assertClean()`: throws, listing them, if there was any unexpected record.
 */
export function watchPage(page) {
  const records = [];
  watched.push({ page, records });
  const expectations = [];
  const waiters = new Set();
  const problems = () => records.filter((r) => !r.expected);

  const add = (record) => {
    const covering = expectations.filter(
      (e) =>
        !e.finished &&
        (!e.kinds || e.kinds.includes(record.kind)) &&
        (e.test(record.url) || e.test(record.text)) &&
        (!e.text || e.text(record.text)),
    );
    record.expected = covering.length > 0;
    for (const e of covering) e.matches.push(record);
    records.push(record);
    for (const waiter of waiters) waiter(record);
  };

  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    add({ kind: 'console', url: message.location()?.url ?? '', text: message.text() });
  });
  page.on('pageerror', (error) => add({ kind: 'pageerror', url: page.url(), text: String(error?.stack ?? error) }));
  page.on('requestfailed', (req) =>
    add({ kind: 'requestfailed', url: req.url(), method: req.method(), text: req.failure()?.errorText ?? 'failed' }),
  );
  page.on('response', (res) => {
    if (res.status() < 400) return;
    add({ kind: 'response', url: res.url(), method: res.request().method(), status: res.status(), text: `HTTP ${res.status()}` });
  });

  return {
    records,
    expectFailure(pattern, { kinds, text } = {}) {
      const expectation = { test: matcher(pattern), kinds, text: text && matcher(text), matches: [], finished: false };
      expectations.push(expectation);
      return {
        matches: expectation.matches,
        done() {
          expectation.finished = true;
        },
      };
    },
    problems,
    waitFor(predicate, { timeout = 10_000, message = 'a page record' } = {}) {
      const found = records.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((ok, fail) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          fail(new Error(`timed out after ${timeout} ms waiting for ${message}; records: ${JSON.stringify(records, null, 1)}`));
        }, timeout);
        const waiter = (record) => {
          if (!predicate(record)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          ok(record);
        };
        waiters.add(waiter);
      });
    },
    assertClean() {
      const unexpected = problems();
      if (unexpected.length === 0) return;
      const lines = unexpected.map((r) => `  ${r.kind}: ${r.method ? `${r.method} ` : ''}${r.url} ${r.text}`);
      throw new Error(`the page had ${unexpected.length} unexpected failure(s):\n${lines.join('\n')}`);
    },
  };
}
