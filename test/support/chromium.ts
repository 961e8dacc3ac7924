import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

/**
 * A real browser for the tests of pages: Debian's Chromium, driven by playwright-core (which
 * downloads none). `.ci/run` installs it; elsewhere without it the tests that need it are
 * skipped, saying so — in CI they run, and fail.
 */
export const CHROMIUM = process.env['AISTOCK_CHROMIUM'] ?? '/usr/bin/chromium';

/** Whether `file`'s browser tests are skipped here; if they are, says why on stderr. */
export function skipWithoutChromium(file: string): boolean {
  const skip = !existsSync(CHROMIUM) && process.env['CI'] === undefined;
  if (skip) console.warn(`${file}: skipped — no Chromium at ${CHROMIUM} (apt-get install -y --no-install-recommends chromium, or set AISTOCK_CHROMIUM)`);
  return skip;
}

/** Headless Chromium as the tests run it (no sandbox: CI runs as root). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}

/** What went wrong on `page` from now on: page errors, console errors, and every request `allowed` refuses (offline pages allow none outside). */
export function pageProblems(page: Page, allowed: (url: string) => boolean): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${String(error)}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('request', (request) => {
    if (!allowed(request.url())) problems.push(`network: ${request.url()}`);
  });
  return problems;
}
