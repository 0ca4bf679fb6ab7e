// Browser-test harness: the real services on a private Redis, pages served from other
// origins, a headless Chromium, and a watcher that fails a test on any console error, page
// error, failed request or HTTP error the test did not declare.
//
//   freePort()                      a free TCP port of 127.0.0.1
//   startRedis()                    private redis-server → {url, port, stop()}
//   startServices({redis, corsOrigins, env})
//                                   im-service + game-service → {imUrl, gameUrl, token(user, opts),
//                                   stopIm(), startIm(), stopGame(), startGame(), logs(), stop()}
//   staticServer({root | html})     another origin → {url, origin, port, stop()}
//   launchBrowser()                 headless Chromium (/usr/bin/chromium, never downloaded)
//   newPage(browser) / watchPage(page)
//                                   {page, watch}: watch.expectFailure(pattern, {kinds, text}),
//                                   watch.waitFor(predicate), watch.assertClean()
//   request(url, opts) / nodeEventStream(url, opts)
//                                   the same calls from Node, where no CORS check applies
//   waitUntil(condition, opts)      poll a condition until a deadline
//   screenshot(page, name)          SCREENSHOT_DIR/<name>.png
//   teardown / reportFailure        for after() and afterEach()
//
// Typical use (every resource is registered for `teardown()`, which `after()` runs even when
// a test fails; `reportFailure` prints the services' output and the pages' records, and takes
// screenshots, when a test failed):
//
//   import { after, afterEach, test } from 'node:test';
//   import * as h from './harness.mjs';
//   after(h.teardown);
//   afterEach(h.reportFailure);
//   test('…', async () => {
//     const redis = await h.startRedis();
//     const site = await h.staticServer({ html: '<!doctype html><link rel="icon" href="data:,">…' });
//     const services = await h.startServices({ redis, corsOrigins: [site.origin] });
//     const { page, watch } = await h.newPage(await h.launchBrowser());
//     await page.goto(site.url);
//     …
//     watch.assertClean();
//   });
//
// Nothing here sleeps in place of a condition: waits poll a condition until a deadline.
//
// The parts live in harness/, one job each; this file is the one entry point tests import.

export { BIN_DIR, CHROMIUM, CHROMIUM_ARGS, LOG_DIR, ROOT, SCREENSHOT_DIR } from './harness/config.mjs';
export { onTeardown, teardown } from './harness/teardown.mjs';
export { waitUntil } from './harness/wait.mjs';
export { freePort, nodeEventStream, request } from './harness/http.mjs';
export { startRedis } from './harness/redis.mjs';
export { binary, startServices } from './harness/services.mjs';
export { staticServer } from './harness/static.mjs';
export { launchBrowser, newPage, screenshot } from './harness/browser.mjs';
export { watchPage } from './harness/watch.mjs';
export { reportFailure } from './harness/report.mjs';
