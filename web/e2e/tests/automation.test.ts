/**
 * Email automation from the dashboard: a manager writes a template against its live preview (a
 * mistake shows its line before saving), adds a rule on new leads, and sees the welcome email sent
 * through the mesh's SMTP server when a lead arrives; a viewer reads but cannot change.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { agency, api, brandUrl, context, launch, meshUrl, shot, signedIn, type Agency } from '../support';

let browser: Browser;
let a: Agency;

beforeAll(async () => {
  browser = await launch();
  a = await agency('Auto', '#2b8a3e');
});
afterAll(async () => browser?.close());

test('a manager writes a template with a live preview, adds a rule, and the email goes out', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signedIn(page, brandUrl(a, '/app/automation'), a.manager.email);
  await page.getByText('No template yet.').waitFor();
  await page.getByRole('button', { name: 'New template' }).click();

  const preview = page.getByTestId('template-preview');
  await page.getByLabel('Name').fill('Welcome');
  await page.getByLabel('Subject').fill('Welcome, {{ lead.contact_name }}');
  await page.getByLabel('HTML', { exact: true }).fill('<p>Hello {{ lead.contact_name }},</p>\n<p>{{ lead.company }}</p>\n<p>{{ lead.numbr }}</p>');
  await expect.poll(() => preview.textContent(), { timeout: 10_000 }).toMatch(/line 3/);
  await page.getByLabel('HTML', { exact: true }).fill('<p>Hello {{ lead.contact_name }},</p>\n<p>Thanks for reaching {{ brand.name }}.</p>');
  await page.getByLabel('Text', { exact: true }).fill('Hello {{ lead.contact_name }}, thanks for reaching {{ brand.name }}.');
  await expect.poll(() => preview.textContent(), { timeout: 10_000 }).toContain('Welcome, Clara Client');
  const frame = page.frameLocator('iframe[title="Email preview"]');
  await frame.getByText(`Thanks for reaching ${a.brandName}.`).waitFor();
  await shot(page, 'automation-template-preview');
  await page.getByRole('button', { name: 'Save template' }).click();
  await page.getByTestId('templates-table').getByText('Welcome', { exact: true }).waitFor();

  await page.getByRole('tab', { name: 'Rules' }).click();
  await page.getByRole('button', { name: 'New rule' }).click();
  await page.getByLabel('Name').fill('Welcome new leads');
  await page.getByRole('textbox', { name: 'Event' }).click();
  await page.getByRole('option', { name: 'A lead was captured' }).click();
  await page.getByRole('textbox', { name: 'Template' }).click();
  await page.getByRole('option', { name: 'Welcome' }).click();
  await page.getByRole('button', { name: 'Add rule' }).click();
  await page.getByTestId('rules-table').getByText('Welcome new leads').waitFor();
  await shot(page, 'automation-rules');

  await api(a.ownerToken).sales.createLead({
    lead: { brandId: a.brandId, contactName: 'Wendy Welcome', email: 'wendy@client.example', company: 'Welcome GmbH' },
  });
  await page.getByRole('tab', { name: 'Sent' }).click();
  const row = page.getByTestId('email-row').filter({ hasText: 'wendy@client.example' });
  await expect.poll(() => row.getByTestId('email-status').textContent(), { timeout: 20_000 }).toBe('Sent');
  await row.getByText('Welcome, Wendy Welcome').waitFor();
  await shot(page, 'automation-sent');
  await ctx.close();
});

test('the unsubscribe link of an email reaches Comm through Envoy and the gateway', async () => {
  // A one-click POST with a token Comm did not sign: Comm's own page answers (400), not the apps.
  const response = await fetch(`${meshUrl()}/email/unsubscribe?token=forged.token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'List-Unsubscribe=One-Click',
  });
  expect(response.status).toBe(400);
  expect(await response.text()).toContain('This link does not work');
});

test('a viewer reads the automation but is offered no change', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signedIn(page, brandUrl(a, '/app/automation'), a.viewer.email);
  await page.getByTestId('templates-table').waitFor();
  expect(await page.getByRole('button', { name: 'New template' }).count()).toBe(0);
  await page.getByRole('tab', { name: 'Rules' }).click();
  await page.getByTestId('rules-table').waitFor();
  expect(await page.getByRole('button', { name: 'New rule' }).count()).toBe(0);
  await ctx.close();
});
