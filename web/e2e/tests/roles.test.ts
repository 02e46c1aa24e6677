/**
 * Role-aware screens: an agent moves only leads that are theirs or unassigned, a viewer gets no
 * write controls, finance sees no pipeline, and a refusal by the server is shown, not swallowed.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { agency, api, brandUrl, card, column, context, drag, landed, launch, shot, signIn, token, type Agency } from '../support';

let browser: Browser;
let a: Agency;
const ids: Record<string, string> = {};

beforeAll(async () => {
  browser = await launch();
  a = await agency('Roles', '#2b8a3e');
  const agentApi = api(await token(a.agent.email)).sales;
  const ownerApi = api(a.ownerToken).sales;
  // The agent's own lead (agents become the assignee), one of the manager's, one nobody's.
  ids.mine = (await agentApi.createLead({ lead: { brandId: a.brandId, contactName: 'Mina Mine' } })).lead!.id;
  const theirs = (await ownerApi.createLead({ lead: { brandId: a.brandId, contactName: 'Theo Theirs' } })).lead!;
  ids.theirs = (await ownerApi.assignLead({ leadId: theirs.id, assigneeId: a.manager.id })).lead!.id;
  ids.open = (await ownerApi.createLead({ lead: { brandId: a.brandId, contactName: 'Olive Open' } })).lead!.id;
});
afterAll(async () => browser?.close());

test('an agent moves their own and unassigned leads, not a colleague’s', async () => {
  const ctx = await context(browser, 1920, 1080);
  const page = await ctx.newPage();
  // Without live updates (a flaky connection): a live board would show the reassignment below at
  // once and make the card read-only, and the server's refusal is what this test is about.
  await page.route('**/sentra.sales.v1.SalesService/WatchPipeline', (route) => route.abort());
  await signIn(page, brandUrl(a, '/app/pipeline'), a.agent.email);
  await expect.poll(() => card(page, 'Theo Theirs').count(), { timeout: 15_000 }).toBe(1);
  expect(await card(page, 'Mina Mine').getAttribute('data-writable')).toBe('true');
  expect(await card(page, 'Olive Open').getAttribute('data-writable')).toBe('true');
  expect(await card(page, 'Theo Theirs').getAttribute('data-writable')).toBe('false');
  expect(await card(page, 'Theo Theirs').getByRole('button', { name: /Move/ }).count()).toBe(0);

  // Dragging a colleague's lead does nothing; dragging one's own moves it.
  await drag(page, 'Theo Theirs', 'Contacted');
  await drag(page, 'Mina Mine', 'Contacted');
  await landed(page, 'Mina Mine', 'Contacted');
  await page.reload();
  await expect.poll(() => column(page, 'New').getByText('Theo Theirs').count(), { timeout: 10_000 }).toBe(1);
  const theirs = await api(a.ownerToken).sales.getLead({ leadId: ids.theirs! });
  expect(theirs.lead!.stage).toBe(1); // still New

  // No admin, no receivables for an agent.
  expect(await page.getByRole('link', { name: 'Receivables' }).count()).toBe(0);
  expect(await page.getByRole('link', { name: 'Brands' }).count()).toBe(0);

  // A refusal by the server is shown: the open lead is given to the manager after the board
  // was drawn, so the agent's move is refused and the card goes back.
  await api(a.ownerToken).sales.assignLead({ leadId: ids.open!, assigneeId: a.manager.id });
  await drag(page, 'Olive Open', 'Contacted');
  const alert = page.getByRole('alert').filter({ hasText: 'The lead was not moved' });
  await expect.poll(() => alert.textContent(), { timeout: 10_000 }).toContain('permission');
  await expect.poll(() => card(page, 'Olive Open').getAttribute('data-stage'), { timeout: 10_000 }).toBe('New');
  await shot(page, 'board-agent-refused');
  await ctx.close();
});

test('a viewer sees everything and is offered no change', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signIn(page, brandUrl(a, '/app/pipeline'), a.viewer.email);
  await expect.poll(() => card(page, 'Mina Mine').count(), { timeout: 15_000 }).toBe(1);
  expect(await page.getByTestId('new-lead').count()).toBe(0);
  const cards = page.getByTestId('lead-card');
  for (const writable of await cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-writable')))) {
    expect(writable).toBe('false');
  }
  await card(page, 'Mina Mine').getByRole('link', { name: 'Mina Mine' }).click();
  await expect.poll(() => page.getByTestId('lead-stage').isVisible(), { timeout: 10_000 }).toBe(true);
  for (const action of ['Edit', 'Assign', 'Mark lost', 'Convert to client', 'Add note']) {
    expect(await page.getByRole('button', { name: action }).count(), action).toBe(0);
  }
  expect(await page.getByLabel('Add a note').count()).toBe(0);
  await shot(page, 'lead-page-viewer');
  await ctx.close();
});

test('finance works invoices and sees no pipeline', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signIn(page, brandUrl(a, '/app/'), a.finance.email);
  await expect.poll(() => page.getByRole('heading', { name: 'Invoices' }).isVisible(), { timeout: 15_000 }).toBe(true);
  expect(await page.getByRole('link', { name: 'Pipeline' }).count()).toBe(0);
  expect(await page.getByRole('link', { name: 'Receivables' }).count()).toBe(1);
  await ctx.close();
});
