// Paths, the browser's binary and flags, and the timing limits every part of the harness shares.

import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The workspace root (three levels above this file). */
export const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
/** Where the service binaries are: `$CARGO_TARGET_DIR/debug` or `target/debug`. */
export const BIN_DIR = join(
  process.env.CARGO_TARGET_DIR
    ? resolve(ROOT, process.env.CARGO_TARGET_DIR) // relative to the workspace, like cargo
    : join(ROOT, 'target'),
  'debug',
);
/** Screenshots (`BROWSER_SCREENSHOTS` or `tests/browser/screenshots/`). */
export const SCREENSHOT_DIR = resolve(
  process.env.BROWSER_SCREENSHOTS ?? fileURLToPath(new URL('../screenshots', import.meta.url)),
);
/** Service and Redis output of this test file: `tests/browser/output/<test file>/`. */
export const LOG_DIR = fileURLToPath(
  new URL(`../output/${basename(process.argv[1] ?? 'harness', '.mjs')}/`, import.meta.url),
);
/** Chromium: `CHROMIUM` or Debian's `/usr/bin/chromium`. Playwright never downloads one. */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** The flags every browser starts with (no network beyond the test's own servers). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** How long a process may take to start (debug binaries start in well under a second). */
export const STARTUP_MS = 30_000;
/** Attempts at starting a server again on a fresh port when its port was taken meanwhile. */
export const PORT_ATTEMPTS = 3;
