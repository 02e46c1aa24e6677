/**
 * Two people move the same card from two browsers: the first move wins; the second is refused by
 * its stale etag, its card goes back, the lead is shown as it stands, and a message says why.
 * The second board's live updates are cut off (a flaky connection), or it would have shown the
 * first move before the second person could make theirs: the etag is what protects then.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { agency, api, brandUrl, card, context, drag, launch, shot, signIn, type Agency } from '../support';

let browser: Browser;
let a: Agency;

beforeAll(async () => {
  browser = await launch();
  a = await agency('Race', '#e8590c');
  await api(a.ownerToken).sales.createLead({ lead: { brandId: a.brandId, contactName: 'Cora Contested' } });
});
afterAll(async () => browser?.close());

test('the second of two concurrent moves sees the conflict', async () => {
  const first = await (await context(browser, 1920, 1080)).newPage();
  const second = await (await context(browser, 1920, 1080)).newPage();
  await second.route('**/sentra.sales.v1.SalesService/WatchPipeline', (route) => route.abort());
  await signIn(first, brandUrl(a, '/app/pipeline'), a.manager.email);
  await signIn(second, brandUrl(a, '/app/pipeline'), a.owner.email);
  for (const page of [first, second]) {
    await expect.poll(() => card(page, 'Cora Contested').getAttribute('data-stage'), { timeout: 15_000 }).toBe('New');
  }

  await drag(first, 'Cora Contested', 'Contacted');
  await expect.poll(() => card(first, 'Cora Contested').getAttribute('data-stage'), { timeout: 10_000 }).toBe('Contacted');

  // The second board still shows the card in New, with the etag it was drawn from.
  expect(await card(second, 'Cora Contested').getAttribute('data-stage')).toBe('New');
  await drag(second, 'Cora Contested', 'Contacted');
  const message = second.getByTestId('conflict-message');
  await expect.poll(() => message.textContent(), { timeout: 10_000 }).toContain('changed by someone else');
  expect(await message.textContent()).toContain('now in Contacted');
  await expect.poll(() => card(second, 'Cora Contested').getAttribute('data-conflict')).toBe('true');
  expect(await card(second, 'Cora Contested').getAttribute('data-stage')).toBe('Contacted');
  await shot(second, 'board-conflict');

  // Exactly one stage change was recorded.
  const lead = (await api(a.ownerToken).sales.listLeads({ brandId: a.brandId })).leads[0]!;
  const history = await api(a.ownerToken).sales.getLeadHistory({ leadId: lead.id });
  expect(history.entries.filter((e) => e.eventType.includes('stage')).length).toBe(1);
});
