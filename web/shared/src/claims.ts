/**
 * The principal an access token names, read from the token's claims.
 *
 * The browser does not verify the signature (it has no reason to distrust the server that just
 * issued the token, and every service verifies it anyway); it reads the claims only to decide what
 * to offer: which brands, which actions, when to refresh.
 */

export type OrgRole = 'owner' | 'admin' | 'member' | 'analyst';
export type BrandRole = 'manager' | 'agent' | 'finance' | 'viewer';

/** A signed-in staff user or portal client, as the access token describes them. */
export interface Principal {
  userId: string;
  organizationId: string;
  kind: 'staff' | 'client';
  orgRole: OrgRole | null;
  /** Brand id -> the staff user's role on it. */
  brands: Record<string, BrandRole>;
  /** The portal's brand (clients only). */
  portalBrandId: string | null;
  /** The Sales client a portal user belongs to (clients only). */
  clientId: string | null;
  /** When the token expires, in milliseconds since the epoch. */
  expiresAt: number;
}

function base64UrlDecode(segment: string): string {
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(segment.length / 4) * 4, '=');
  const binary = atob(base64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** Reads a Sentra access token's claims; throws on anything that is not one. */
export function decodeAccessToken(token: string): Principal {
  const payload = token.split('.')[1];
  if (payload === undefined) throw new Error('not a JWT');
  const claims = JSON.parse(base64UrlDecode(payload)) as Record<string, unknown>;
  const str = (key: string): string | null => (typeof claims[key] === 'string' ? (claims[key] as string) : null);
  const sub = str('sub');
  const org = str('org');
  const kind = str('kind');
  if (sub === null || org === null || (kind !== 'staff' && kind !== 'client') || typeof claims.exp !== 'number') {
    throw new Error('not a Sentra access token');
  }
  return {
    userId: sub,
    organizationId: org,
    kind,
    orgRole: (str('org_role') as OrgRole | null) ?? null,
    brands: (claims.brands as Record<string, BrandRole> | undefined) ?? {},
    portalBrandId: str('portal_brand'),
    clientId: str('client_id'),
    expiresAt: claims.exp * 1000,
  };
}
