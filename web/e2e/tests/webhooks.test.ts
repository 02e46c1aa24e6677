/**
 * Webhooks from the dashboard: the owner adds an endpoint (a receiver on this machine), copies
 * the secret shown once, sees a lead's event delivered after the receiver's first 500, opens the
 * attempts, and replays the delivery; the receiver got the same `webhook-id` every time.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { agency, api, brandUrl, context, launch, shot, signedIn, type Agency } from '../support';

interface Hit {
  headers: IncomingHttpHeaders;
  body: string;
}

let browser: Browser;
let a: Agency;
let receiver: Server;
const hits: Hit[] = [];
/** Statuses for the next requests; 200 afterwards. */
const answers: number[] = [500];

beforeAll(async () => {
  browser = await launch();
  a = await agency('Hooks', '#5f3dc4');
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      hits.push({ headers: req.headers, body });
      res.statusCode = answers.shift() ?? 200;
      res.end(res.statusCode === 200 ? 'thanks' : 'not now');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

test('the owner adds an endpoint, watches a retried delivery succeed and replays it', async () => {
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/sentra`;
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signedIn(page, brandUrl(a, '/app/admin/webhooks'), a.owner.email);
  await page.getByText('No endpoint yet.').waitFor();

  // A private address the server refuses is shown on the field.
  await page.getByRole('button', { name: 'Add endpoint' }).click();
  await page.getByLabel('URL').fill('http://10.0.0.1/hooks');
  await page.getByRole('dialog').getByRole('button', { name: 'Add endpoint' }).click();
  await page.getByText(/refused: 10\.0\.0\.1 is a private address/i).waitFor();

  await page.getByLabel('URL').fill(url);
  await page.getByLabel('Events').fill('sales.lead.*');
  await page.getByLabel('Description').fill('Our CRM');
  await page.getByRole('dialog').getByRole('button', { name: 'Add endpoint' }).click();
  const secret = await page.getByTestId('webhook-secret').inputValue();
  expect(secret).toMatch(/^whsec_[A-Za-z0-9+/=]+$/);
  await shot(page, 'webhook-secret-once');
  await page.getByRole('button', { name: 'Done' }).click();
  await page.getByTestId('webhook-row').filter({ hasText: url }).waitFor();

  const { lead } = await api(a.ownerToken).sales.createLead({ lead: { brandId: a.brandId, contactName: 'Hedda Hook' } });
  await page.getByRole('link', { name: url }).click();
  const row = page.getByTestId('delivery-row').filter({ hasText: 'sales.lead.created' });
  await expect.poll(() => row.getByTestId('delivery-status').textContent(), { timeout: 15_000 }).toBe('Delivered');
  await row.getByRole('button', { name: 'sales.lead.created' }).click();
  await page.getByTestId('delivery-attempts').getByText('HTTP 500').waitFor();
  await page.getByTestId('delivery-attempts').getByText('HTTP 200').waitFor();
  // The success ended the failure streak the first 500 began.
  await page.getByText('Enabled', { exact: true }).waitFor({ timeout: 10_000 });
  await shot(page, 'webhook-deliveries');

  await row.getByRole('button', { name: 'Replay' }).click();
  await expect.poll(() => hits.length, { timeout: 15_000 }).toBe(3);
  const ids = new Set(hits.map((h) => h.headers['webhook-id']));
  expect(ids.size).toBe(1);
  const body = JSON.parse(hits[2]!.body) as { type: string; data: { leadId: string; contact: { name: string } } };
  expect(body.type).toBe('sales.lead.created');
  expect(body.data.leadId).toBe(lead!.id);
  expect(body.data.contact.name).toBe('Hedda Hook');
  expect(String(hits[2]!.headers['webhook-signature'])).toMatch(/^v1,/);
  await ctx.close();
});

test('people without an organization role see no webhooks', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signedIn(page, brandUrl(a, '/app/'), a.manager.email);
  await page.getByRole('navigation').waitFor();
  expect(await page.getByRole('link', { name: 'Webhooks' }).count()).toBe(0);
  await page.goto(brandUrl(a, '/app/admin/webhooks'));
  await expect.poll(() => page.getByRole('alert').first().textContent(), { timeout: 10_000 }).toMatch(/permission/i);
  await ctx.close();
});
