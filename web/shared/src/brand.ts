/**
 * White-label by host: the page's host name names a brand (`ResolveBrandByDomain`); its name,
 * colour and logo dress the app. A host that names no brand is the neutral Sentra host.
 */
import { Code, ConnectError, createClient, type Transport } from '@connectrpc/connect';
import {
  Badge,
  createTheme,
  defaultVariantColorsResolver,
  parseThemeColor,
  type CSSVariablesResolver,
  type MantineColorsTuple,
  type MantineThemeOverride,
  type VariantColorsResolver,
} from '@mantine/core';
import { TenancyService } from './gen/sentra/tenancy/v1/tenancy_service_pb';

/** The public face of a brand. */
export interface BrandInfo {
  brandId: string;
  organizationId: string;
  displayName: string;
  logoUrl: string;
  primaryColor: string;
  supportEmail: string;
  domain: string;
}

/** Sentra's own colour, used on the neutral host. */
export const SENTRA_COLOR = '#4c6ef5';

/** The brand served on `host`, or `null` on a host that names none. */
export async function resolveBrand(transport: Transport, host: string): Promise<BrandInfo | null> {
  try {
    const r = await createClient(TenancyService, transport).resolveBrandByDomain({ host });
    return {
      brandId: r.brandId,
      organizationId: r.organizationId,
      displayName: r.displayName,
      logoUrl: r.logoUrl,
      primaryColor: r.primaryColor,
      supportEmail: r.supportEmail,
      domain: r.domain,
    };
  } catch (error) {
    // An IP address or a one-label name (localhost) cannot name a brand either.
    const code = ConnectError.from(error).code;
    if (code === Code.NotFound || code === Code.InvalidArgument) return null;
    throw error;
  }
}

function parseHex(hex: string): [number, number, number] | null {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex.trim());
  if (!m) return null;
  const n = parseInt(m[1]!, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function mix(rgb: [number, number, number], toward: number, amount: number): string {
  const c = rgb.map((v) => Math.round(v + (toward - v) * amount));
  return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
}

/**
 * Ten shades around `hex` for Mantine, the brand colour itself at index 6 (Mantine's primary
 * shade), lighter ones mixed with white, darker ones with black.
 */
export function brandPalette(hex: string): MantineColorsTuple {
  const rgb = parseHex(hex) ?? parseHex(SENTRA_COLOR)!;
  const base = mix(rgb, 0, 0);
  return [
    mix(rgb, 255, 0.92),
    mix(rgb, 255, 0.8),
    mix(rgb, 255, 0.64),
    mix(rgb, 255, 0.46),
    mix(rgb, 255, 0.3),
    mix(rgb, 255, 0.14),
    base,
    mix(rgb, 0, 0.14),
    mix(rgb, 0, 0.28),
    mix(rgb, 0, 0.42),
  ];
}

/**
 * Mantine's colours, with text dark enough for WCAG AA: "light" buttons and badges write in the
 * colour's darkest shade (the default, shade 6 on a pale tint, is too faint for small text).
 */
const accessibleVariants: VariantColorsResolver = (input) => {
  const colors = defaultVariantColorsResolver(input);
  const parsed = parseThemeColor({ color: input.color || input.theme.primaryColor, theme: input.theme });
  if (input.variant === 'light' && parsed.isThemeColor && parsed.color !== 'brand') {
    return { ...colors, color: `var(--mantine-color-${parsed.color}-9)` };
  }
  return colors;
};

/** The Mantine theme of a brand (or Sentra's, for `null`). */
export function brandTheme(brand: BrandInfo | null): MantineThemeOverride {
  return createTheme({
    primaryColor: 'brand',
    primaryShade: 6,
    colors: { brand: brandPalette(brand?.primaryColor || SENTRA_COLOR) },
    autoContrast: true,
    variantColorResolver: accessibleVariants,
    // Status badges as a coloured dot beside dark text: readable whatever the colour.
    components: { Badge: Badge.extend({ defaultProps: { variant: 'dot' } }) },
    defaultRadius: 'md',
    fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif',
    headings: { fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif' },
  });
}

/**
 * Mantine's "dimmed" grey (gray 6) falls under the WCAG AA contrast ratio for small text on
 * white; both apps use gray 7 instead.
 */
export const cssVariables: CSSVariablesResolver = (theme) => ({
  variables: {},
  light: { '--mantine-color-dimmed': theme.colors.gray[7] },
  dark: {},
});
