/**
 * The "as of" control: after today's changes, the dashboard set to an earlier moment shows the
 * pipeline exactly as it was shown at that moment.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { agency, api, brandUrl, context, launch, shot, signIn, type Agency } from '../support';
import { LeadStage } from '../../shared/src/gen/sentra/sales/v1/resources_pb';

let browser: Browser;
let a: Agency;

beforeAll(async () => {
  browser = await launch();
  a = await agency('History', '#1971c2');
});
afterAll(async () => browser?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stageTable(page: Page): Promise<string[]> {
  const rows = page.getByTestId('stage-table').locator('tbody tr');
  await rows.first().waitFor();
  return rows.evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).innerText.replace(/\s+/g, ' ').trim()));
}

test('the pipeline as of an earlier moment is the pipeline shown then', async () => {
  const s = api(a.ownerToken).sales;
  const lead = async (name: string, cents: bigint) =>
    (await s.createLead({ lead: { brandId: a.brandId, contactName: name, estimatedValue: { currencyCode: 'EUR', amountMinor: cents } } })).lead!;
  const first = await lead('Early One', 100_000n);
  await lead('Early Two', 250_000n);
  await s.changeLeadStage({ leadId: first.id, stage: LeadStage.CONTACTED, etag: first.etag });

  const page = await (await context(browser)).newPage();
  await signIn(page, brandUrl(a, '/app/'), a.manager.email);
  await expect.poll(async () => (await stageTable(page))[1], { timeout: 15_000 }).toContain('Contacted 1');
  // The as-of input has one-second resolution: let the second of the last change pass.
  await sleep(1100);
  const then = await page.evaluate(() => {
    const d = new Date();
    const p = (n: number) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  });
  await page.reload();
  const before = await stageTable(page);
  await sleep(1100);

  // Today's changes.
  const late = await lead('Late Three', 990_000n);
  await s.changeLeadStage({ leadId: late.id, stage: LeadStage.CONTACTED, etag: late.etag });
  await s.markLeadLost({ leadId: (await s.getLead({ leadId: first.id })).lead!.id, reason: 'budget' });
  await page.reload();
  await expect.poll(async () => (await stageTable(page)).join('|'), { timeout: 15_000 }).not.toBe(before.join('|'));
  const now = await stageTable(page);
  expect(now.find((r) => r.startsWith('Lost'))).toContain('Lost 1');

  await page.getByTestId('as-of').fill(then);
  await expect.poll(() => page.getByTestId('as-of-banner').isVisible(), { timeout: 10_000 }).toBe(true);
  await expect.poll(async () => (await stageTable(page)).join('|'), { timeout: 15_000 }).toBe(before.join('|'));
  await shot(page, 'home-as-of');

  await page.getByRole('button', { name: 'Now' }).click();
  await expect.poll(async () => (await stageTable(page)).join('|'), { timeout: 15_000 }).toBe(now.join('|'));
});
