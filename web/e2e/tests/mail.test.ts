/**
 * Comm in the dashboard: a manager connects Gmail through the consent page (the mesh's fake
 * Google), watches it sync, adds the brand's sender address, finds the conversation on the
 * lead's page and replies from that address; the client's page shows it too.
 */
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser } from 'playwright-core';
import { agency, api, brandUrl, context, fakeGmail, launch, shot, signedIn, type Agency } from '../support';

let browser: Browser;
let a: Agency;

beforeAll(async () => {
  browser = await launch();
  a = await agency('Mail', '#5f3dc4');
});
afterAll(async () => browser?.close());

test('a manager connects Gmail, sees a lead’s conversation and replies from the brand’s address', async () => {
  const mailbox = a.manager.email;
  const contact = `lena@client-${a.slug}.example`;
  await fakeGmail(`users/${mailbox}/consent`);
  await fakeGmail(`users/${mailbox}/send-as`, { email: `hello@${a.slug}.example`, display_name: 'Mail Studio', verified: true });
  await fakeGmail(`users/${mailbox}/messages`, {
    from_name: 'Lena Lead',
    from: contact,
    subject: 'Website relaunch',
    text: 'Hello, we would like to relaunch our website in spring. Can we talk?',
  });
  await fakeGmail(`users/${mailbox}/messages`, { from_name: 'News', from: 'news@weekly.example', subject: 'Weekly digest', text: 'x' });
  const { lead } = await api(a.ownerToken).sales.createLead({
    lead: { brandId: a.brandId, contactName: 'Lena Lead', company: 'Lena GmbH', email: contact },
  });

  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signedIn(page, brandUrl(a, '/app/mailboxes'), a.manager.email);
  await page.getByText('No mailbox connected yet').waitFor();
  await shot(page, 'mailboxes-empty');

  // The consent page (Google's, here the fake) sends the browser back to the callback page.
  await page.getByRole('button', { name: 'Connect Gmail' }).click();
  await page.waitForURL(/\/app\/mailboxes$/, { timeout: 15_000 });
  const row = page.getByTestId('mailbox-row').filter({ hasText: mailbox });
  await expect.poll(() => row.getByTestId('mailbox-stage').textContent(), { timeout: 20_000 }).toBe('In sync');
  await expect.poll(() => row.getByTestId('mailbox-count').textContent(), { timeout: 20_000 }).toBe('2');

  // The brand's sender address, checked against Gmail's send-as list.
  await page.getByLabel('Sender address').fill(`hello@${a.slug}.example`);
  await page.getByLabel('Display name').fill('Mail Studio');
  await page.getByRole('textbox', { name: 'Sent through' }).click();
  await page.getByRole('option', { name: mailbox }).click();
  await page.getByRole('button', { name: 'Add sender' }).click();
  await expect.poll(() => page.getByTestId('alias-row').textContent(), { timeout: 10_000 }).toContain('Verified');
  await shot(page, 'mailboxes-connected');

  // On the lead's page: the conversation (not the newsletter), and a reply from the alias.
  await page.goto(brandUrl(a, `/app/leads/${lead!.id}`));
  const thread = page.getByTestId('thread').filter({ hasText: 'Website relaunch' });
  await thread.waitFor({ timeout: 20_000 });
  expect(await page.getByTestId('thread').count()).toBe(1);
  await thread.getByText('Website relaunch').click();
  await thread.getByTestId('thread-message').getByText('relaunch our website in spring').waitFor();
  await thread.getByRole('textbox', { name: /Reply to/ }).fill('Hi Lena, gladly: how about Tuesday at 10?');
  await thread.getByRole('button', { name: 'Send reply' }).click();
  await expect.poll(() => thread.getByTestId('thread-message').count(), { timeout: 15_000 }).toBe(2);
  await thread.getByTestId('thread-message').getByText('how about Tuesday at 10?').waitFor();
  expect(await thread.getByTestId('thread-message').last().textContent()).toContain(`hello@${a.slug}.example`);
  await expect.poll(() => thread.getByTestId('thread-count').textContent(), { timeout: 10_000 }).toBe('2 messages');
  // A second reply still answers the contact, not our own reply.
  await thread.getByRole('textbox', { name: 'Reply to Lena Lead' }).waitFor();
  await shot(page, 'lead-conversation');

  // The server keeps one message per reply, also for the API.
  const threads = await api(a.ownerToken).comm.listThreads({ leadId: lead!.id });
  expect(threads.threads[0]!.messageCount).toBe(2);
  await ctx.close();
});

test('a callback without a code explains itself instead of failing silently', async () => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await signedIn(page, brandUrl(a, '/app/'), a.agent.email);
  await page.goto(brandUrl(a, '/app/mailboxes/callback?error=access_denied'));
  await page.getByText('Gmail did not grant access (access_denied).').waitFor({ timeout: 10_000 });
  await page.getByRole('link', { name: 'Back to mailboxes' }).waitFor();
  await shot(page, 'mailbox-callback-refused');
  await ctx.close();
});
