/**
 * Accessibility of the main pages, checked by axe-core in the real browser: every input has a
 * label, every button and link a name, no duplicate ids, sufficient contrast, landmarks; plus
 * the board can be worked from the keyboard alone.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { PASSWORD, agency, api, brandUrl, card, context, invoicedClient, launch, signedIn, type Agency } from '../support';

const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let browser: Browser;
let a: Agency;
let leadId: string;
let invoiceId: string;

beforeAll(async () => {
  browser = await launch();
  a = await agency('Access', '#1864ab');
  const { invoice, client } = await invoicedClient(a, 'Ally Access', 50_000n);
  invoiceId = invoice.id;
  leadId = client.leadIds[0]!;
  await api(a.ownerToken).sales.createLead({ lead: { brandId: a.brandId, contactName: 'Kim Keyboard', company: 'Keys Ltd' } });
  await api(a.ownerToken).tenancy.createPortalUser({
    brandId: a.brandId,
    clientId: client.id,
    email: `ally@${a.slug}.example`,
    displayName: 'Ally',
    password: PASSWORD,
  });
});
afterAll(async () => browser?.close());

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** Serious and critical axe violations on the page as it is now. */
async function violations(page: Page): Promise<string[]> {
  await page.addScriptTag({ path: axePath });
  const found = (await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (c: Document, o: object) => Promise<{ violations: unknown[] }> } }).axe;
    return (await axe.run(document, { resultTypes: ['violations'] })).violations;
  })) as Violation[];
  return found
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.help}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

test('the main pages have no serious accessibility violation', async () => {
  // axe is injected as a script, which the apps' content security policy rightly forbids.
  const page = await (await context(browser, 1366, 900, true)).newPage();
  await signedIn(page, brandUrl(a, '/app/'), a.owner.email);
  const pages: [string, () => Promise<unknown>][] = [
    ['/app/', () => page.getByTestId('stage-table').waitFor()],
    ['/app/pipeline', () => card(page, 'Kim Keyboard').waitFor()],
    [`/app/leads/${leadId}`, () => page.getByTestId('history-entry').first().waitFor()],
    ['/app/clients', () => page.getByTestId('clients-table').waitFor()],
    [`/app/finance/invoices/${invoiceId}`, () => page.getByTestId('invoice-status').waitFor()],
    ['/app/finance/receivables', () => page.getByTestId('aging-table').waitFor()],
    ['/app/admin/users', () => page.getByTestId('users-table').waitFor()],
    ['/app/mailboxes', () => page.getByText('No mailbox connected yet').waitFor()],
    ['/app/admin/webhooks', () => page.getByText('No endpoint yet.').waitFor()],
    ['/app/automation', () => page.getByText('No template yet.').waitFor()],
  ];
  const problems: string[] = [];
  for (const [path, ready] of pages) {
    await page.goto(brandUrl(a, path));
    await ready();
    problems.push(...(await violations(page)).map((v) => `${path}: ${v}`));
  }
  const portal = await (await context(browser, 1366, 900, true)).newPage();
  await signedIn(portal, brandUrl(a, '/sign-in'), `ally@${a.slug}.example`);
  await portal.getByTestId('portal-invoices').waitFor();
  problems.push(...(await violations(portal)).map((v) => `portal: ${v}`));
  expect(problems).toEqual([]);
});

test('a lead moves from the keyboard alone', async () => {
  const page = await (await context(browser, 1600, 900)).newPage();
  await signedIn(page, brandUrl(a, '/app/pipeline'), a.manager.email);
  await card(page, 'Kim Keyboard').waitFor();
  await card(page, 'Kim Keyboard').getByRole('button', { name: 'Move Kim Keyboard' }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('menuitem', { name: 'Contacted' }).waitFor();
  for (let i = 0; i < 4; i += 1) {
    if ((await page.evaluate(() => document.activeElement?.textContent)) === 'Contacted') break;
    await page.keyboard.press('ArrowDown');
  }
  expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Contacted');
  await page.keyboard.press('Enter');
  await expect.poll(() => card(page, 'Kim Keyboard').getAttribute('data-stage'), { timeout: 10_000 }).not.toBe('New');
});
