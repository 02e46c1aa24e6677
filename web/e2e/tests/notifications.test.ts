/**
 * The notification bell: an agent with the dashboard open sees a lead assigned to them arrive
 * live (WatchNotifications over gRPC-Web through Envoy), opens it from the bell, and marks all
 * read.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { agency, api, brandUrl, context, launch, shot, signedIn, type Agency } from '../support';

let browser: Browser;
let a: Agency;

beforeAll(async () => {
  browser = await launch();
  a = await agency('Bell', '#c2255c');
});
afterAll(async () => browser?.close());

test('a lead assigned to the agent rings the bell live and opens from it', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signedIn(page, brandUrl(a, '/app/clients'), a.agent.email);
  const bell = page.getByRole('button', { name: /Notifications, \d+ unread/ });
  await expect.poll(() => bell.getAttribute('aria-label'), { timeout: 10_000 }).toBe('Notifications, 0 unread');

  const s = api(a.ownerToken).sales;
  const { lead } = await s.createLead({ lead: { brandId: a.brandId, contactName: 'Bella Bell', company: 'Bell & Co' } });
  await s.assignLead({ leadId: lead!.id, assigneeId: a.agent.id });

  // No reload: the stream brings it.
  await expect.poll(() => bell.getAttribute('aria-label'), { timeout: 10_000 }).toBe('Notifications, 1 unread');
  await page.getByText('Bella Bell was assigned to you').first().waitFor();
  await bell.click();
  await page.getByTestId('notification').filter({ hasText: 'Bella Bell was assigned to you' }).waitFor();
  await shot(page, 'notification-bell');
  await page.getByTestId('notification').filter({ hasText: 'Bella Bell was assigned to you' }).click();
  await page.waitForURL(new RegExp(`/app/leads/${lead!.id}$`), { timeout: 10_000 });
  await expect.poll(() => bell.getAttribute('aria-label'), { timeout: 10_000 }).toBe('Notifications, 0 unread');
  await ctx.close();
});

test('a person turns a kind of notification off from the bell, and it stays off', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signedIn(page, brandUrl(a, '/app/clients'), a.agent.email);
  await page.getByRole('button', { name: /Notifications, \d+ unread/ }).click();
  await page.getByRole('button', { name: 'Preferences' }).click();
  const row = page.getByTestId('preference').filter({ hasText: 'A lead is assigned to me' });
  await row.getByText('Off', { exact: true }).click();
  await expect.poll(() => row.getByRole('radio', { name: 'Off' }).isChecked(), { timeout: 10_000 }).toBe(true);
  await shot(page, 'notification-preferences');
  // From the server, after a reload.
  await page.reload();
  await page.getByRole('button', { name: /Notifications, \d+ unread/ }).click();
  await page.getByRole('button', { name: 'Preferences' }).click();
  const again = page.getByTestId('preference').filter({ hasText: 'A lead is assigned to me' });
  await expect.poll(() => again.getByRole('radio', { name: 'Off' }).isChecked(), { timeout: 10_000 }).toBe(true);
  expect(await page.getByTestId('preference').filter({ hasText: 'My lead changes stage' }).getByRole('radio', { name: 'In the app' }).isChecked()).toBe(true);
  await ctx.close();
});
