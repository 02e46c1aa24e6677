// Refreshes the screenshots in docs/ from a running `make run` (demo data, default ports):
//   node web/scripts/docs-screenshots.mjs [http://127.0.0.1:8080]
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = new URL(process.argv[2] ?? 'http://127.0.0.1:8080');
const port = base.port || '80';
const out = new URL('../../docs/screenshots/', import.meta.url).pathname;
const PASSWORD = 'sentra-demo-2026';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--host-resolver-rules=MAP *.localhost 127.0.0.1'],
});

async function session(url, email, width = 1440, height = 900) {
  const page = await (await browser.newContext({ viewport: { width, height }, locale: 'en-US' })).newPage();
  await page.goto(url);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForLoadState('networkidle');
  return page;
}

const uq = (path) => `http://app.urbanquill.localhost:${port}${path}`;
let page = await session(uq('/app/pipeline'), 'mark@urbanquill.example');
await page.getByTestId('lead-card').first().waitFor();
await page.screenshot({ path: join(out, 'dashboard-pipeline.png') });
await page.goto(uq('/app/'));
await page.getByTestId('stage-table').waitFor();
await page.waitForTimeout(500);
await page.screenshot({ path: join(out, 'dashboard-home.png') });

page = await session(uq('/'), 'client@analytical-engines.example');
await page.getByTestId('portal-invoices').waitFor();
await page.screenshot({ path: join(out, 'portal-home.png') });

page = await session(uq('/app/'), 'alice@urbanquill.example', 390, 844);
await page.getByTestId('stage-table').waitFor();
await page.waitForTimeout(500);
await page.screenshot({ path: join(out, 'dashboard-phone.png') });

await browser.close();
console.log(`screenshots written to ${out}`);
