// The browser: a headless Chromium, its pages, and their screenshots.

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS, SCREENSHOT_DIR } from './config.mjs';
import { onTeardown } from './teardown.mjs';
import { watchPage } from './watch.mjs';

/** A headless Chromium (`CHROMIUM`, default /usr/bin/chromium) with `CHROMIUM_ARGS`; closed at teardown. */
export async function launchBrowser(options = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} does not exist: install Debian's chromium (scripts/browser_test.sh does) or set CHROMIUM`);
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, ...options });
  onTeardown(() => browser.close(), 'browser');
  return browser;
}

/** Saves a full-page screenshot to `SCREENSHOT_DIR/<name>.png` and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const path = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** A new page of `browser` (or of a browser context) with its `watchPage` watcher: `{page, watch}`. */
export async function newPage(browser) {
  const page = await browser.newPage();
  return { page, watch: watchPage(page) };
}
