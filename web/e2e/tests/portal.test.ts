/**
 * The clients' portal on the brand's domain: a client signs in and sees only their own issued
 * invoices and orders, in the brand's colours; another brand's domain refuses them; the neutral
 * host has no portal; staff of another organization cannot sign in to this brand's dashboard.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import {
  PASSWORD,
  agency,
  api,
  brandUrl,
  context,
  invoicedClient,
  launch,
  meshUrl,
  shot,
  signIn,
  type Agency,
} from '../support';

let browser: Browser;
let a: Agency;
let b: Agency;
let paula: Awaited<ReturnType<typeof invoicedClient>>;
let other: Awaited<ReturnType<typeof invoicedClient>>;
const email = () => `paula@${a.slug}.example`;

beforeAll(async () => {
  browser = await launch();
  [a, b] = await Promise.all([agency('Portal', '#c2255c'), agency('Elsewhere', '#087f5b')]);
  paula = await invoicedClient(a, 'Paula Portal', 120_000n);
  other = await invoicedClient(a, 'Otto Other', 99_900n);
  await api(a.ownerToken).tenancy.createPortalUser({
    brandId: a.brandId,
    clientId: paula.client.id,
    email: email(),
    displayName: 'Paula',
    password: PASSWORD,
  });
  // A second order of Paula's, confirmed but its invoice not yet issued: still the agency's draft.
  const { order } = await api(a.ownerToken).sales.createOrder({
    clientId: paula.client.id,
    currencyCode: 'EUR',
    lines: [{ description: 'Extra', quantity: '1', unitPrice: { currencyCode: 'EUR', amountMinor: 5_000n } }],
  });
  await api(a.ownerToken).sales.confirmOrder({ orderId: order!.id, etag: order!.etag });
});
afterAll(async () => browser?.close());

test('a client sees their own invoices, in their agency’s colours', async () => {
  const page = await (await context(browser)).newPage();
  await page.goto(brandUrl(a, '/'));
  await expect.poll(() => page.getByRole('button', { name: 'Sign in' }).isVisible(), { timeout: 15_000 }).toBe(true);
  await shot(page, 'portal-sign-in');
  await signIn(page, brandUrl(a, '/sign-in'), email());
  const rows = page.getByTestId('portal-invoices').getByTestId('invoice-row');
  await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(1);
  const row = await rows.first().innerText();
  expect(row).toContain(paula.invoice.number);
  expect(row.toLowerCase()).toContain('issued');
  expect(row).toContain('€1,200.00');
  expect(row).not.toContain(other.invoice.number);
  await expect.poll(() => page.getByTestId('portal-outstanding-EUR').textContent(), { timeout: 10_000 }).toBe('€1,200.00');
  expect(await page.getByTestId('brand-mark').innerText()).toContain(a.brandName);
  // The brand's colour is the theme's primary colour (#c2255c).
  const primary = await page.evaluate(() =>
    getComputedStyle(document.documentElement).getPropertyValue('--mantine-primary-color-filled').trim(),
  );
  expect(primary.toLowerCase()).toBe('#c2255c');
  await shot(page, 'portal-home');

  await rows.first().getByRole('link').click();
  await expect.poll(() => page.getByTestId('invoice-number').textContent(), { timeout: 10_000 }).toBe(paula.invoice.number);
  await shot(page, 'portal-invoice');

  // Another client's invoice by its address: not found for this client.
  await page.goto(brandUrl(a, `/invoices/${other.invoice.id}`));
  await expect.poll(() => page.getByRole('alert').textContent(), { timeout: 10_000 }).toContain('does not exist');
});

test('another brand’s domain refuses the client, and the neutral host has no portal', async () => {
  const page = await (await context(browser)).newPage();
  await signIn(page, brandUrl(b, '/sign-in'), email());
  await expect.poll(() => page.getByTestId('sign-in-error').textContent(), { timeout: 10_000 }).toContain(b.brandName);
  await shot(page, 'portal-wrong-brand');

  await page.goto(`${meshUrl()}/`);
  await expect.poll(() => page.getByTestId('no-portal').isVisible(), { timeout: 10_000 }).toBe(true);
  await shot(page, 'portal-neutral-host');
});

test('staff of another organization cannot sign in to this brand’s dashboard', async () => {
  const page = await (await context(browser)).newPage();
  await signIn(page, brandUrl(a, '/app/'), b.owner.email);
  await expect.poll(() => page.getByTestId('sign-in-error').textContent(), { timeout: 10_000 }).toContain(
    'another agency',
  );
  // And the same person on the neutral host gets their own organization.
  await signIn(page, `${meshUrl()}/app/`, b.owner.email);
  await expect.poll(() => page.getByRole('heading', { name: 'Pipeline overview' }).isVisible(), { timeout: 15_000 }).toBe(true);
});
