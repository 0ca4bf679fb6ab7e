// reportFailure: after a failed test, the services' output, the pages' records and screenshots.

import { screenshot } from './browser.mjs';
import { LOG_DIR } from './config.mjs';
import { servicesLogs } from './services.mjs';
import { watchedPages } from './watch.mjs';

/**
 * For `afterEach(h.reportFailure)`: when the test failed, prints to stderr the tail of every
 * service's output and every watched page's records, and saves a screenshot of each page still
 * open (`SCREENSHOT_DIR/failure-<test>-<n>.png`).
 */
export async function reportFailure(t) {
  if (t?.passed !== false) return;
  const slug = String(t.name).replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 80);
  const out = [`=== "${t.name}" failed; full logs in ${LOG_DIR}`];
  out.push(...servicesLogs());
  for (const [n, { page, records }] of watchedPages().entries()) {
    out.push(`--- page ${n} (${page.isClosed() ? 'closed' : page.url()}) records:`);
    for (const r of records) out.push(`  ${r.expected ? 'expected  ' : 'UNEXPECTED'} ${r.kind}: ${r.url} ${r.text}`);
    if (!page.isClosed()) {
      try {
        out.push(`  screenshot: ${await screenshot(page, `failure-${slug}-${n}`)}`);
      } catch (err) {
        out.push(`  no screenshot: ${err.message}`);
      }
    }
  }
  process.stderr.write(`${out.join('\n')}\n`);
}
