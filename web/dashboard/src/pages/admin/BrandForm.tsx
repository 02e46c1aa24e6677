/**
 * A brand's white-label settings (domain, colour, logo, invoice prefix, aliases), for creating a
 * brand and editing one; only changed fields go into the update mask.
 */
import { useState } from 'react';
import { Button, ColorInput, Group, SimpleGrid, Stack, TagsInput, TextInput } from '@mantine/core';
import { useMutation } from '@connectrpc/connect-query';
import { TenancyService } from '@sentra/shared/api';
import type { Brand } from '@sentra/shared/gen/sentra/tenancy/v1/resources_pb';
import { fieldError, toProblem, type Problem } from '@sentra/shared/errors';
import { ErrorAlert } from '@sentra/shared/ui';

type Fields = Pick<
  Brand,
  'name' | 'domain' | 'displayName' | 'logoUrl' | 'primaryColor' | 'supportEmail' | 'invoicePrefix' | 'defaultCurrency' | 'timeZone' | 'emailAliases'
>;

const PATHS: [keyof Fields, string][] = [
  ['name', 'name'],
  ['domain', 'domain'],
  ['displayName', 'display_name'],
  ['logoUrl', 'logo_url'],
  ['primaryColor', 'primary_color'],
  ['supportEmail', 'support_email'],
  ['invoicePrefix', 'invoice_prefix'],
  ['defaultCurrency', 'default_currency'],
  ['timeZone', 'time_zone'],
  ['emailAliases', 'email_aliases'],
];

function fields(b: Brand | undefined): Fields {
  return {
    name: b?.name ?? '',
    domain: b?.domain ?? '',
    displayName: b?.displayName ?? '',
    logoUrl: b?.logoUrl ?? '',
    primaryColor: b?.primaryColor || '#4c6ef5',
    supportEmail: b?.supportEmail ?? '',
    invoicePrefix: b?.invoicePrefix ?? '',
    defaultCurrency: b?.defaultCurrency || 'EUR',
    timeZone: b?.timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone,
    emailAliases: b?.emailAliases ?? [],
  };
}

export function BrandForm({ brand, onSaved, onCancel }: { brand?: Brand; onSaved: (brand: Brand) => void; onCancel?: () => void }) {
  const initial = fields(brand);
  const [f, setF] = useState<Fields>(initial);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [requestId] = useState(() => crypto.randomUUID());
  const create = useMutation(TenancyService.method.createBrand);
  const update = useMutation(TenancyService.method.updateBrand);
  const set = <K extends keyof Fields>(key: K, value: Fields[K]) => setF((old) => ({ ...old, [key]: value }));
  const err = (path: string) => fieldError(problem, `brand.${path}`);
  const text = (key: keyof Fields, path: string, label: string, extra: Record<string, unknown> = {}) => (
    <TextInput
      label={label}
      value={f[key] as string}
      onChange={(e) => set(key, e.currentTarget.value as never)}
      error={err(path)}
      {...extra}
    />
  );
  return (
    <form
      aria-label={brand ? 'Brand settings' : 'New brand'}
      onSubmit={(e) => {
        e.preventDefault();
        setProblem(null);
        const call = brand
          ? update.mutateAsync({
              brand: { ...f, id: brand.id, etag: brand.etag },
              updateMask: {
                paths: PATHS.filter(([key]) => JSON.stringify(f[key]) !== JSON.stringify(initial[key])).map(([, p]) => p),
              },
            })
          : create.mutateAsync({ brand: f, requestId });
        call.then((r) => r.brand && onSaved(r.brand)).catch((error: unknown) => setProblem(toProblem(error)));
      }}
    >
      <Stack>
        <SimpleGrid cols={{ base: 1, sm: 2 }}>
          {text('name', 'name', 'Name', { required: true, description: 'Internal name' })}
          {text('displayName', 'display_name', 'Display name', { description: "Shown to the brand's clients" })}
          {text('domain', 'domain', 'Domain', { required: true, description: 'Where the portal and dashboard are served, e.g. app.example.com' })}
          {text('logoUrl', 'logo_url', 'Logo URL', { description: 'https URL; empty for none' })}
          <ColorInput label="Primary colour" format="hex" value={f.primaryColor} onChange={(v) => set('primaryColor', v)} error={err('primary_color')} />
          {text('supportEmail', 'support_email', 'Support email')}
          {text('invoicePrefix', 'invoice_prefix', 'Invoice prefix', { required: true, description: 'UQ gives UQ-2026-000001' })}
          {text('defaultCurrency', 'default_currency', 'Default currency', { description: 'ISO-4217, e.g. EUR' })}
          {text('timeZone', 'time_zone', 'Time zone', { description: 'IANA, e.g. Europe/Berlin' })}
          <TagsInput
            label="Email aliases"
            description="Addresses the brand sends from; Enter after each"
            value={f.emailAliases}
            onChange={(v) => set('emailAliases', v)}
            error={err('email_aliases')}
          />
        </SimpleGrid>
        {problem && Object.keys(problem.fields).length === 0 && <ErrorAlert error={problem} />}
        <Group justify="flex-end">
          {onCancel && (
            <Button variant="default" onClick={onCancel}>
              Cancel
            </Button>
          )}
          <Button type="submit" loading={create.isPending || update.isPending}>
            {brand ? 'Save settings' : 'Create brand'}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
