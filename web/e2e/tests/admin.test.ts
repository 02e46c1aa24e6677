/**
 * The owner on the neutral host: brands (a new one with its colour), users (an invitation that the
 * invited person accepts in their own browser), brand roles; the session ending elsewhere sends the
 * open dashboard back to sign-in; and the main pages at a phone's width.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { PASSWORD, agency, api, brandUrl, card, context, launch, meshUrl, shot, signIn, type Agency } from '../support';

let browser: Browser;
let a: Agency;

beforeAll(async () => {
  browser = await launch();
  a = await agency('Admin', '#364fc7');
  const s = api(a.ownerToken).sales;
  for (const name of ['Phil Phone', 'Tina Tablet', 'Desmond Desk']) {
    await s.createLead({ lead: { brandId: a.brandId, contactName: name, company: `${name.split(' ')[1]} AG`, estimatedValue: { currencyCode: 'EUR', amountMinor: 150_000n } } });
  }
});
afterAll(async () => browser?.close());

test('an owner creates a brand and invites a colleague who joins', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signIn(page, `${meshUrl()}/app/`, a.owner.email);
  await page.getByRole('link', { name: 'Brands' }).click();
  await page.getByRole('button', { name: 'New brand' }).click();
  const form = page.getByRole('dialog');
  await form.getByLabel(/^Name/).fill('Second Studio');
  await form.getByLabel('Domain').fill(`second.${a.slug}.localhost`);
  await form.getByLabel('Invoice prefix').fill('no spaces allowed');
  await form.getByRole('button', { name: 'Create brand' }).click();
  await expect.poll(() => form.locator('.mantine-InputWrapper-error').count(), { timeout: 10_000 }).toBe(1);
  await form.getByLabel('Invoice prefix').fill('SS');
  await form.getByRole('button', { name: 'Create brand' }).click();
  await expect.poll(() => page.getByRole('heading', { name: 'Second Studio' }).isVisible(), { timeout: 10_000 }).toBe(true);
  await shot(page, 'admin-brand');

  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('button', { name: 'Add user' }).click();
  const invite = page.getByRole('dialog');
  await invite.getByLabel('Email').fill(`ivy@${a.slug}.example`);
  await invite.getByLabel('Name').fill('Ivy Invited');
  await invite.getByRole('button', { name: 'Invite' }).click();
  const link = await invite.getByTestId('invite-link').inputValue();
  expect(link).toContain('/app/accept-invite?token=');
  await invite.getByRole('button', { name: 'Done' }).click();
  await page.getByRole('link', { name: 'Ivy Invited' }).click();
  await page.locator('main').getByLabel('Brand', { exact: true }).click();
  await page.getByRole('option', { name: 'Second Studio' }).click();
  await page.getByRole('button', { name: 'Grant role' }).click();
  await expect.poll(() => page.getByTestId('user-roles').textContent(), { timeout: 10_000 }).toContain('Second Studio');
  await shot(page, 'admin-user');

  // An analyst: picked from the organization roles, shown on their page.
  await page.getByRole('link', { name: 'Users' }).click();
  await page.getByRole('button', { name: 'Add user' }).click();
  const analyst = page.getByRole('dialog');
  await analyst.getByLabel('Email').fill(`nina@${a.slug}.example`);
  await analyst.getByLabel('Name').fill('Nina Numbers');
  await analyst.getByLabel('Organization role').click();
  await expect.poll(() => page.getByRole('option', { name: 'Analyst' }).isVisible(), { timeout: 10_000 }).toBe(true);
  await shot(page, 'admin-org-roles');
  await page.getByRole('option', { name: 'Analyst' }).click();
  await analyst.getByRole('button', { name: 'Invite' }).click();
  await analyst.getByTestId('invite-link').waitFor();
  await analyst.getByRole('button', { name: 'Done' }).click();
  await page.getByRole('link', { name: 'Nina Numbers' }).click();
  await expect.poll(() => page.locator('main').textContent(), { timeout: 10_000 }).toContain('Analyst');

  const ivy = await (await context(browser)).newPage();
  await ivy.goto(link);
  await ivy.getByLabel('Choose a password').fill(PASSWORD);
  await ivy.getByRole('button', { name: 'Set password' }).click();
  await ivy.getByRole('link', { name: 'Sign in' }).click();
  await ivy.getByLabel('Email').fill(`ivy@${a.slug}.example`);
  await ivy.getByLabel('Password').fill(PASSWORD);
  await ivy.getByRole('button', { name: 'Sign in' }).click();
  await expect.poll(() => ivy.getByRole('heading', { name: 'Pipeline overview' }).isVisible(), { timeout: 15_000 }).toBe(true);
  await ctx.close();
});

test('a session ended elsewhere sends the dashboard back to sign-in', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await page.clock.install();
  await signIn(page, brandUrl(a, '/app/'), a.manager.email);
  await expect.poll(() => page.getByRole('heading', { name: 'Pipeline overview' }).isVisible(), { timeout: 15_000 }).toBe(true);
  // Revoke the session's refresh token (as "sign out everywhere" would), then let the access
  // token's lifetime pass: the next call's refresh is refused and the app asks to sign in.
  const refresh = await page.evaluate(() => localStorage.getItem('sentra.dashboard.refresh'));
  await api().auth.logout({ refreshToken: refresh! });
  // The clock jumps as over a laptop's sleep. The next thing the person does meets the expired
  // session, unless the app noticed first (a background refetch): either way it lands on sign-in,
  // and signing in again returns to where the person was going.
  await page.clock.setSystemTime(Date.now() + 16 * 60_000);
  await page.getByRole('link', { name: 'Pipeline' }).click({ timeout: 5_000 }).catch(() => undefined);
  await expect.poll(() => page.getByTestId('session-expired').isVisible(), { timeout: 15_000 }).toBe(true);
  const signInUrl = new URL(page.url());
  expect(signInUrl.pathname).toBe('/app/sign-in');
  const next = signInUrl.searchParams.get('next') ?? '/';
  expect(['/', '/pipeline']).toContain(next);
  await shot(page, 'session-expired');
  await page.getByLabel('Email').fill(a.manager.email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const trimmed = () => new URL(page.url()).pathname.replace(/\/$/, '');
  await expect.poll(trimmed, { timeout: 15_000 }).toBe(`/app${next}`.replace(/\/$/, ''));
  await ctx.close();
});

test('the main pages work at 375 px', async () => {
  const ctx = await context(browser, 375, 812);
  const page = await ctx.newPage();
  await signIn(page, brandUrl(a, '/app/'), a.manager.email);
  await expect.poll(() => page.getByRole('heading', { name: 'Pipeline overview' }).isVisible(), { timeout: 15_000 }).toBe(true);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot(page, 'mobile-home');
  // The navigation opens from the burger; the board scrolls sideways inside itself.
  await page.getByRole('button', { name: 'Navigation' }).click();
  await page.getByRole('link', { name: 'Pipeline' }).click();
  await expect.poll(() => card(page, 'Phil Phone').isVisible(), { timeout: 15_000 }).toBe(true);
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  // Moving by the card's menu, as on a phone.
  await card(page, 'Phil Phone').getByRole('button', { name: 'Move Phil Phone' }).click();
  await page.getByRole('menuitem', { name: 'Contacted' }).click();
  await expect.poll(() => card(page, 'Phil Phone').getAttribute('data-stage'), { timeout: 10_000 }).toBe('Contacted');
  await shot(page, 'mobile-board');
  await ctx.close();
});
