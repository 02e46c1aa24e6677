/**
 * What the browser tests share: API clients over gRPC-Web through Envoy (the same generated
 * clients the apps use), an agency of its own per test, Chromium, sign-in, and screenshots.
 */
import { join } from 'node:path';
import { Code, ConnectError, createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { inject } from 'vitest';
import { AuthService } from '../shared/src/gen/sentra/tenancy/v1/auth_service_pb';
import { TenancyService } from '../shared/src/gen/sentra/tenancy/v1/tenancy_service_pb';
import { SalesService } from '../shared/src/gen/sentra/sales/v1/sales_service_pb';
import { FinanceService } from '../shared/src/gen/sentra/finance/v1/finance_service_pb';
import { CommService } from '../shared/src/gen/sentra/comm/v1/comm_service_pb';
import { BrandRole, OrgRole } from '../shared/src/gen/sentra/tenancy/v1/resources_pb';

export const PASSWORD = 'correct horse 42';

/** The mesh's Envoy, e.g. http://127.0.0.1:40123. */
export function meshUrl(): string {
  return inject('meshUrl');
}

/** The Envoy port, for brand-domain URLs like http://app.x.localhost:<port>/. */
export function meshPort(): string {
  return new URL(meshUrl()).port;
}

/** Calls the fake Gmail's control API (`/_fake/…`): adds mail, send-as addresses, the consenting user. */
export async function fakeGmail(path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${inject('gmailUrl')}/_fake/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`fake Gmail ${path}: ${response.status}`);
  return response.status === 204 ? undefined : response.json();
}

/** Typed clients as someone with `token` (or anonymous). */
export function api(token?: string) {
  const auth: Interceptor = (next) => (req) => {
    if (token) req.header.set('authorization', `Bearer ${token}`);
    return next(req);
  };
  // Test set-up runs faster than people do: wait out the gateway's rate limit as a client should.
  const patient: Interceptor = (next) => async (req) => {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await next(req);
      } catch (error) {
        if (attempt >= 50 || ConnectError.from(error).code !== Code.ResourceExhausted) throw error;
        await new Promise((r) => setTimeout(r, 20 + attempt * 10));
      }
    }
  };
  const transport = createGrpcWebTransport({ baseUrl: meshUrl(), interceptors: [auth, patient] });
  return {
    auth: createClient(AuthService, transport),
    tenancy: createClient(TenancyService, transport),
    sales: createClient(SalesService, transport),
    finance: createClient(FinanceService, transport),
    comm: createClient(CommService, transport),
  };
}

/** Signs `email` in through the API and returns the access token. */
export async function token(email: string, host = ''): Promise<string> {
  const { tokens } = await api().auth.login({ email, password: PASSWORD, host });
  return tokens!.accessToken;
}

export interface Person {
  id: string;
  email: string;
  name: string;
}

/** An organization of its own with one brand and a person in every brand role. */
export interface Agency {
  slug: string;
  orgId: string;
  brandId: string;
  brandName: string;
  domain: string;
  color: string;
  owner: Person;
  ownerToken: string;
  manager: Person;
  agent: Person;
  finance: Person;
  viewer: Person;
}

let counter = 0;

/** Signs up a fresh agency (unique names and domain) with a brand and its staff. */
export async function agency(name = 'Agency', color = '#0b7285'): Promise<Agency> {
  counter += 1;
  const slug = `${name.toLowerCase().replace(/[^a-z0-9]+/g, '')}${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
  const ownerEmail = `owner@${slug}.example`;
  const signUp = await api().tenancy.signUp({
    organizationName: `${name} ${slug}`,
    ownerEmail,
    ownerDisplayName: `${name} Owner`,
    password: PASSWORD,
  });
  const ownerToken = await token(ownerEmail);
  const t = api(ownerToken).tenancy;
  const domain = `app.${slug}.localhost`;
  const brandName = `${name} Studio`;
  const { brand } = await t.createBrand({
    brand: {
      name: brandName,
      displayName: brandName,
      domain,
      primaryColor: color,
      supportEmail: `help@${slug}.example`,
      invoicePrefix: 'INV',
      defaultCurrency: 'EUR',
      timeZone: 'Europe/Berlin',
    },
  });
  const people: Record<string, Person> = {};
  for (const [role, brandRole, display] of [
    ['manager', BrandRole.MANAGER, 'Mara Manager'],
    ['agent', BrandRole.AGENT, 'Andy Agent'],
    ['finance', BrandRole.FINANCE, 'Fay Finance'],
    ['viewer', BrandRole.VIEWER, 'Vic Viewer'],
  ] as const) {
    const email = `${role}@${slug}.example`;
    const { user } = await t.createUser({ email, displayName: display, orgRole: OrgRole.MEMBER, password: PASSWORD });
    await t.grantBrandAccess({ brandId: brand!.id, userId: user!.id, role: brandRole });
    people[role] = { id: user!.id, email, name: display };
  }
  return {
    slug,
    orgId: signUp.organization!.id,
    brandId: brand!.id,
    brandName,
    domain,
    color,
    owner: { id: signUp.owner!.id, email: ownerEmail, name: `${name} Owner` },
    ownerToken,
    manager: people.manager!,
    agent: people.agent!,
    finance: people.finance!,
    viewer: people.viewer!,
  };
}

/** The brand's dashboard (`/app/…`) or portal (`/…`) URL. */
export function brandUrl(a: Agency, path: string): string {
  return `http://${a.domain}:${meshPort()}${path}`;
}

/** Debian's Chromium, headless, resolving every *.localhost brand domain to this machine. */
export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--host-resolver-rules=MAP *.localhost 127.0.0.1',
    ],
  });
}

/** A fresh browser context (its own storage: another person, another device). */
export async function context(browser: Browser, width = 1366, height = 900, bypassCSP = false): Promise<BrowserContext> {
  return browser.newContext({ viewport: { width, height }, locale: 'en-US', timezoneId: 'Europe/Berlin', bypassCSP });
}

/** Signs in through the page's form at `url` (a sign-in page or a page that redirects to it). */
export async function signIn(page: Page, url: string, email: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Saves a screenshot under target/screenshots/ for people to look at. */
export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(inject('shotsDir'), `${name}.png`), fullPage: true });
}

/** A board column by its stage label. */
export function column(page: Page, stage: string) {
  return page.locator(`[data-testid="board-column"][data-stage="${stage}"]`);
}

/** A board card by the lead's contact name. */
export function card(page: Page, name: string) {
  return page.locator('[data-testid="lead-card"]', { hasText: name });
}

/** Drags a card onto a column the way a person does with a mouse (dnd-kit needs real moves). */
export async function drag(page: Page, name: string, stage: string): Promise<void> {
  // Nothing may cover the board (a closing dialog fades out for a moment).
  await page.getByRole('dialog').waitFor({ state: 'detached' }).catch(() => undefined);
  await card(page, name).scrollIntoViewIfNeeded();
  const from = (await card(page, name).boundingBox())!;
  const to = (await column(page, stage).boundingBox())!;
  const x = from.x + from.width / 2;
  const y = from.y + from.height - 8;
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + 12, y + 12, { steps: 4 });
  // Drop at the card's own height where the target column reaches it (long columns scroll).
  const dropY = Math.min(Math.max(y, to.y + 60), to.y + to.height - 20);
  await page.mouse.move(to.x + to.width / 2, dropY, { steps: 16 });
  await page.mouse.move(to.x + to.width / 2 + 2, dropY + 2, { steps: 2 });
  await page.mouse.up();
}

/**
 * Waits until the card shows in `stage` and its move is kept by the server (no longer
 * `aria-busy`); a reload before that would cancel the move, as it would for a person.
 */
export async function landed(page: Page, name: string, stage: string): Promise<void> {
  const moved = page.locator(`[data-testid="lead-card"][data-stage="${stage}"]:not([aria-busy="true"])`, {
    hasText: name,
  });
  await moved.waitFor({ timeout: 10_000 });
}

/** A client with an order confirmed through the API, and its invoice once Finance drafted it. */
export async function invoicedClient(a: Agency, contactName: string, amountMinor: bigint, issue = true) {
  const s = api(a.ownerToken).sales;
  const f = api(a.ownerToken).finance;
  const { lead } = await s.createLead({
    lead: { brandId: a.brandId, contactName, company: `${contactName} GmbH`, email: `${contactName.split(' ')[0]!.toLowerCase()}@${a.slug}.example` },
  });
  let current = lead!;
  for (const stage of [2, 3]) current = (await s.changeLeadStage({ leadId: current.id, stage, etag: current.etag })).lead!;
  const { client } = await s.convertLead({ leadId: current.id, etag: current.etag });
  const { order } = await s.createOrder({
    clientId: client!.id,
    currencyCode: 'EUR',
    lines: [{ description: 'Brand identity', quantity: '1', unitPrice: { currencyCode: 'EUR', amountMinor }, taxRateBps: 0 }],
  });
  await s.confirmOrder({ orderId: order!.id, etag: order!.etag });
  let invoice = undefined;
  for (let i = 0; i < 100 && !invoice; i += 1) {
    invoice = (await f.listInvoices({ orderId: order!.id, brandId: a.brandId })).invoices[0];
    if (!invoice) await new Promise((r) => setTimeout(r, 200));
  }
  if (!invoice) throw new Error('Finance drafted no invoice');
  if (issue) invoice = (await f.issueInvoice({ invoiceId: invoice.id, etag: invoice.etag })).invoice!;
  return { client: client!, order: order!, invoice };
}

/** Signs in and waits until the app has left the sign-in page. */
export async function signedIn(page: Page, url: string, email: string): Promise<void> {
  await signIn(page, url, email);
  await page.waitForURL((u) => !u.pathname.endsWith('/sign-in'), { timeout: 15_000 });
}
