/**
 * What the browser tests share: API clients over gRPC-Web through Envoy (the same generated
 * clients the apps use), an agency of its own per test, Chromium, sign-in, and screenshots.
 */
import { join } from 'node:path';
import { createClient, type Interceptor } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { inject } from 'vitest';
import { AuthService } from '../shared/src/gen/sentra/tenancy/v1/auth_service_pb';
import { TenancyService } from '../shared/src/gen/sentra/tenancy/v1/tenancy_service_pb';
import { SalesService } from '../shared/src/gen/sentra/sales/v1/sales_service_pb';
import { FinanceService } from '../shared/src/gen/sentra/finance/v1/finance_service_pb';
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

/** Typed clients as someone with `token` (or anonymous). */
export function api(token?: string) {
  const auth: Interceptor = (next) => (req) => {
    if (token) req.header.set('authorization', `Bearer ${token}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({ baseUrl: meshUrl(), interceptors: [auth] });
  return {
    auth: createClient(AuthService, transport),
    tenancy: createClient(TenancyService, transport),
    sales: createClient(SalesService, transport),
    finance: createClient(FinanceService, transport),
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
export async function context(browser: Browser, width = 1366, height = 900): Promise<BrowserContext> {
  return browser.newContext({ viewport: { width, height }, locale: 'en-US', timezoneId: 'Europe/Berlin' });
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
