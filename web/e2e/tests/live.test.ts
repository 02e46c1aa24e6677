/**
 * The live board: what one person changes appears on another person's open board within a
 * second, without a reload, through Envoy's gRPC-Web and the gateway (`WatchPipeline`).
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { agency, api, brandUrl, card, context, drag, landed, launch, shot, signIn, type Agency } from '../support';

let browser: Browser;
let a: Agency;

beforeAll(async () => {
  browser = await launch();
  a = await agency('Livewire', '#2f9e44');
  await api(a.ownerToken).sales.createLead({ lead: { brandId: a.brandId, contactName: 'Mira Moving' } });
});
afterAll(async () => browser?.close());

test("another person's moves and new leads appear on an open board as they happen", async () => {
  const mover = await (await context(browser, 1920, 1080)).newPage();
  const watcher = await (await context(browser, 1920, 1080)).newPage();
  await signIn(mover, brandUrl(a, '/app/pipeline'), a.manager.email);
  await signIn(watcher, brandUrl(a, '/app/pipeline'), a.owner.email);
  for (const page of [mover, watcher]) {
    await expect.poll(() => card(page, 'Mira Moving').getAttribute('data-stage'), { timeout: 15_000 }).toBe('New');
    await expect.poll(() => page.getByTestId('live-indicator').getAttribute('data-live'), { timeout: 10_000 }).toBe('true');
  }

  // A drag on one board moves the card on the other: no reload, no refetch timer.
  await drag(mover, 'Mira Moving', 'Contacted');
  await landed(mover, 'Mira Moving', 'Contacted');
  const moved = Date.now();
  await expect.poll(() => card(watcher, 'Mira Moving').getAttribute('data-stage'), { timeout: 5_000 }).toBe('Contacted');
  const moveLatency = Date.now() - moved;

  // A lead created elsewhere (here through the API, as an integration would) shows up too.
  const created = Date.now();
  await api(a.ownerToken).sales.createLead({ lead: { brandId: a.brandId, contactName: 'Nico New' } });
  await expect.poll(() => card(watcher, 'Nico New').getAttribute('data-stage'), { timeout: 5_000 }).toBe('New');
  const createLatency = Date.now() - created;
  await shot(watcher, 'board-live');
  console.log(`live board: a move appeared on the other board after ${moveLatency} ms, a new lead after ${createLatency} ms`);
});

test("a lead given to a colleague turns read-only on the agent's open board at once", async () => {
  const owner = api(a.ownerToken).sales;
  const lead = (await owner.createLead({ lead: { brandId: a.brandId, contactName: 'Petra Passed' } })).lead!;
  await owner.assignLead({ leadId: lead.id, assigneeId: a.agent.id });
  const page = await (await context(browser, 1920, 1080)).newPage();
  await signIn(page, brandUrl(a, '/app/pipeline'), a.agent.email);
  await expect.poll(() => card(page, 'Petra Passed').getAttribute('data-writable'), { timeout: 15_000 }).toBe('true');
  await expect.poll(() => page.getByTestId('live-indicator').getAttribute('data-live'), { timeout: 10_000 }).toBe('true');

  await owner.assignLead({ leadId: lead.id, assigneeId: a.manager.id });
  await expect.poll(() => card(page, 'Petra Passed').getAttribute('data-writable'), { timeout: 5_000 }).toBe('false');
  expect(await card(page, 'Petra Passed').getByRole('button', { name: /Move/ }).count()).toBe(0);
});
