/**
 * The permission matrix, as the services enforce it (`libs/auth`), so the apps offer only the
 * actions a role may take. The server stays the authority: a refusal is still shown.
 *
 * `permissions.json` is rendered by `sentra_auth::permissions::matrix_json`; a Rust test fails
 * when the two differ.
 */
import matrix from './permissions.json';
import type { BrandRole, OrgRole, Principal } from './claims';

interface Grant {
  permission: string;
  scope: 'organization' | 'brand';
  org_roles: OrgRole[];
  brand_roles: BrandRole[];
  portal: boolean;
}

const grants = new Map<string, Grant>((matrix as Grant[]).map((g) => [g.permission, g]));

/** The permission names the apps check, spelled once. */
export const P = {
  organizationRead: 'tenancy.organization.read',
  organizationWrite: 'tenancy.organization.write',
  brandCreate: 'tenancy.brand.create',
  brandRead: 'tenancy.brand.read',
  brandWrite: 'tenancy.brand.write',
  userRead: 'tenancy.user.read',
  userWrite: 'tenancy.user.write',
  brandAccessRead: 'tenancy.brand_access.read',
  brandAccessWrite: 'tenancy.brand_access.write',
  portalUserWrite: 'tenancy.portal_user.write',
  leadRead: 'sales.lead.read',
  leadWrite: 'sales.lead.write',
  leadAssign: 'sales.lead.assign',
  clientRead: 'sales.client.read',
  clientWrite: 'sales.client.write',
  orderRead: 'sales.order.read',
  orderWrite: 'sales.order.write',
  pipelineRead: 'sales.pipeline.read',
  invoiceRead: 'finance.invoice.read',
  invoiceWrite: 'finance.invoice.write',
  paymentWrite: 'finance.payment.write',
  receivablesRead: 'finance.receivables.read',
  mailboxRead: 'comm.mailbox.read',
  mailboxWrite: 'comm.mailbox.write',
  aliasRead: 'comm.alias.read',
  aliasWrite: 'comm.alias.write',
  threadRead: 'comm.thread.read',
  emailSend: 'comm.email.send',
  notificationRead: 'comm.notification.read',
  automationRead: 'comm.automation.read',
  automationWrite: 'comm.automation.write',
  webhookRead: 'comm.webhook.read',
  webhookWrite: 'comm.webhook.write',
} as const;

export type Permission = (typeof P)[keyof typeof P];

function staffOrgRole(p: Principal): OrgRole | null {
  return p.kind === 'staff' ? p.orgRole : null;
}

/** Whether `p` holds `permission` (on `brandId`, for brand-scoped ones); mirrors `Principal::can`. */
export function can(p: Principal | null, permission: Permission, brandId?: string | null): boolean {
  const grant = grants.get(permission);
  if (!p || !grant) return false;
  const orgRole = staffOrgRole(p);
  if (grant.scope === 'organization') return orgRole !== null && grant.org_roles.includes(orgRole);
  if (!brandId) return false;
  if (p.kind === 'client') return grant.portal && p.portalBrandId === brandId;
  if (orgRole !== null && grant.org_roles.includes(orgRole)) return true;
  const role = p.brands[brandId];
  return role !== undefined && grant.brand_roles.includes(role);
}

/**
 * The brands `p` may use `permission` on: `'all'` for the organization's owners and admins,
 * otherwise a list (possibly empty); mirrors `Principal::brands_with`.
 */
export function brandsWith(p: Principal | null, permission: Permission): 'all' | string[] {
  const grant = grants.get(permission);
  if (!p || !grant) return [];
  const orgRole = staffOrgRole(p);
  if (orgRole !== null && grant.org_roles.includes(orgRole)) return 'all';
  if (grant.scope === 'organization') return [];
  if (p.kind === 'client') return grant.portal && p.portalBrandId ? [p.portalBrandId] : [];
  return Object.entries(p.brands)
    .filter(([, role]) => grant.brand_roles.includes(role))
    .map(([brand]) => brand);
}

/** Whether `p` holds `permission` on at least one brand. */
export function canSomewhere(p: Principal | null, permission: Permission): boolean {
  const brands = brandsWith(p, permission);
  return brands === 'all' || brands.length > 0;
}

/**
 * Whether `p` may change this lead: the write permission on its brand, and for someone who is only
 * an agent there, the lead must be theirs or unassigned (the rule Sales enforces).
 */
export function canWriteLead(p: Principal | null, lead: { brandId: string; assigneeId: string }): boolean {
  if (!p || !can(p, P.leadWrite, lead.brandId)) return false;
  const orgRole = staffOrgRole(p);
  if (orgRole === 'owner' || orgRole === 'admin') return true;
  if (p.brands[lead.brandId] === 'manager') return true;
  return lead.assigneeId === '' || lead.assigneeId === p.userId;
}
