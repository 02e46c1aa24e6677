/**
 * The day of a manager and a finance colleague, through the browser on the brand's domain:
 * a lead is created (a bad email is refused next to its field), dragged through the pipeline,
 * converted, ordered and confirmed; the invoice Finance drafts is issued and partly paid, and the
 * aging chart and the client's balance follow.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { agency, brandUrl, card, column, context, drag, landed, launch, shot, signIn, type Agency } from '../support';

let browser: Browser;
let a: Agency;

beforeAll(async () => {
  browser = await launch();
  a = await agency('Quill', '#5f3dc4');
});
afterAll(async () => browser?.close());

test('a lead becomes a paid-in-part invoice', async () => {
  const ctx = await context(browser, 1920, 1080);
  const page = await ctx.newPage();
  await signIn(page, brandUrl(a, '/app/'), a.manager.email);
  await expect.poll(() => page.getByRole('heading', { name: 'Pipeline overview' }).isVisible(), { timeout: 15_000 }).toBe(true);
  await shot(page, 'dashboard-home');

  // A new lead; the server's field error shows next to the field, and nothing is created.
  await page.getByRole('link', { name: 'Pipeline' }).click();
  await page.getByTestId('new-lead').click();
  const form = page.getByRole('dialog');
  await form.getByLabel('Contact name').fill('Nora Newman');
  await form.getByLabel('Company').fill('Newman Media');
  await form.getByLabel('Email').fill('not-an-email');
  await form.getByLabel('Estimated value').fill('4,800.00');
  await form.getByRole('button', { name: 'Create lead' }).click();
  const emailError = form.locator('.mantine-InputWrapper-error', { hasText: 'email address' });
  await expect.poll(() => emailError.isVisible(), { timeout: 10_000 }).toBe(true);
  await shot(page, 'lead-form-field-error');
  await form.getByLabel('Email').fill('nora@newman.example');
  await form.getByRole('button', { name: 'Create lead' }).click();
  await expect.poll(() => column(page, 'New').getByText('Nora Newman').count(), { timeout: 10_000 }).toBe(1);
  await expect.poll(() => card(page, 'Nora Newman').textContent()).toContain('€4,800.00');

  // Through the pipeline by drag and drop; each move lands in the column and stays after a refetch.
  for (const stage of ['Contacted', 'Qualified']) {
    await drag(page, 'Nora Newman', stage);
    await landed(page, 'Nora Newman', stage);
  }
  await page.reload();
  await expect.poll(() => column(page, 'Qualified').getByText('Nora Newman').count(), { timeout: 10_000 }).toBe(1);
  await shot(page, 'pipeline-board');

  // Dropping on Won converts the lead into a client.
  await drag(page, 'Nora Newman', 'Won');
  await page.getByRole('dialog').getByRole('button', { name: 'Convert' }).click();
  await expect.poll(() => column(page, 'Won').getByText('Nora Newman').count(), { timeout: 10_000 }).toBe(1);

  // The lead's page tells its history.
  await card(page, 'Nora Newman').getByRole('link', { name: 'Nora Newman' }).click();
  await expect.poll(() => page.getByTestId('lead-stage').textContent(), { timeout: 10_000 }).toBe('Won');
  await expect.poll(() => page.getByTestId('history-entry').count(), { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
  await expect.poll(() => page.getByTestId('history').textContent()).toContain('Mara Manager');
  await shot(page, 'lead-page');

  // An order with two lines; totals come from the server.
  await page.getByRole('link', { name: 'Open the client' }).click();
  await page.getByRole('button', { name: 'New order' }).click();
  await expect.poll(() => page.getByTestId('order-state').textContent(), { timeout: 10_000 }).toBe('Draft');
  await page.getByRole('button', { name: 'Add line' }).click();
  await page.getByRole('button', { name: 'Add line' }).click();
  const lines = page.getByTestId('order-line');
  const fill = async (i: number, values: Record<string, string>) => {
    for (const [label, value] of Object.entries(values)) await lines.nth(i).getByLabel(label).fill(value);
  };
  await fill(0, { Description: 'Design sprint', Quantity: '2', 'Unit price (EUR)': '1500', 'Tax %': '19', 'Disc. %': '10' });
  await fill(1, { Description: 'Hosting', Quantity: '12', 'Unit price (EUR)': '25', 'Tax %': '19', 'Disc. %': '0' });
  await page.getByRole('button', { name: 'Save lines' }).click();
  // 2 x 1,500 - 10 % = 2,700 + 19 % = 3,213; 12 x 25 = 300 + 19 % = 357.
  await expect.poll(() => page.getByTestId('amount-total').textContent(), { timeout: 10_000 }).toBe('€3,570.00');
  await expect.poll(() => page.getByTestId('amount-discount').textContent()).toBe('€300.00');
  await page.getByRole('button', { name: 'Confirm order' }).click();
  await expect.poll(() => page.getByTestId('order-state').textContent(), { timeout: 10_000 }).toBe('Confirmed');
  await expect.poll(() => page.getByTestId('order-invoice').getByRole('link').textContent(), { timeout: 20_000 }).toBe('Draft invoice');
  await shot(page, 'order-page');
  await page.getByTestId('user-menu').click();
  await page.getByRole('menuitem', { name: 'Sign out' }).click();
  await expect.poll(() => page.getByRole('button', { name: 'Sign in' }).isVisible(), { timeout: 10_000 }).toBe(true);

  // Finance: no pipeline for them; the invoice is waiting in their list.
  await signIn(page, brandUrl(a, '/app/'), a.finance.email);
  await expect.poll(() => page.getByRole('heading', { name: 'Invoices' }).isVisible(), { timeout: 15_000 }).toBe(true);
  expect(await page.getByRole('link', { name: 'Pipeline' }).count()).toBe(0);
  await page.getByTestId('invoices-table').getByRole('link', { name: 'Draft' }).click();
  await page.getByRole('button', { name: 'Issue' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Issue' }).click();
  await expect.poll(() => page.getByTestId('invoice-status').textContent(), { timeout: 10_000 }).toBe('Issued');
  const invoiceUrl = page.url();

  await page.getByRole('link', { name: 'Receivables' }).click();
  await expect.poll(() => page.getByTestId('aging-total-EUR').textContent(), { timeout: 10_000 }).toBe('€3,570.00');

  await page.goto(invoiceUrl);
  await page.getByRole('button', { name: 'Record payment' }).click();
  const pay = page.getByRole('dialog');
  await pay.getByLabel('Amount (EUR)').fill('1000');
  await pay.getByLabel('Reference').fill('Wire 4711');
  await pay.getByRole('button', { name: 'Record payment' }).click();
  await expect.poll(() => page.getByTestId('invoice-status').textContent(), { timeout: 10_000 }).toBe('Partially paid');
  await expect.poll(() => page.getByTestId('amount-balance-due').first().textContent()).toBe('€2,570.00');
  await shot(page, 'invoice-page');

  await page.getByRole('link', { name: 'Print view' }).click();
  await expect.poll(() => page.getByTestId('invoice-number').textContent(), { timeout: 10_000 }).toMatch(/^INV-\d{4}-000001$/);
  await shot(page, 'invoice-print');

  await page.getByRole('link', { name: 'Receivables' }).click();
  await expect.poll(() => page.getByTestId('aging-total-EUR').textContent(), { timeout: 10_000 }).toBe('€2,570.00');
  await shot(page, 'receivables');

  await page.getByRole('link', { name: 'Clients' }).click();
  await page.getByRole('link', { name: 'Nora Newman' }).click();
  await expect.poll(() => page.getByTestId('outstanding-EUR').textContent(), { timeout: 10_000 }).toBe('€2,570.00');
  await shot(page, 'client-page');
  await ctx.close();
});
