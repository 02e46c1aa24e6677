/**
 * Create or edit a lead. Field errors come from the server's BadRequest details and are shown
 * next to the field they name; a create carries a request id, so a retry never makes two leads.
 */
import { useEffect, useMemo, useState } from 'react';
import { Button, Group, Modal, Select, SimpleGrid, Stack, TextInput, Textarea } from '@mantine/core';
import { useMutation } from '@connectrpc/connect-query';
import { SalesService } from '@sentra/shared/api';
import { fieldError, toProblem, type Problem } from '@sentra/shared/errors';
import { minorToDecimal, minorDigits, parseMinor } from '@sentra/shared/money';
import { P, brandsWith } from '@sentra/shared/permissions';
import { ErrorAlert, usePrincipal } from '@sentra/shared/ui';
import type { Lead } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { useBrands } from '../data';

const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'JPY', 'CAD', 'AUD'];

interface Fields {
  brandId: string;
  contactName: string;
  email: string;
  phone: string;
  company: string;
  source: string;
  amount: string;
  currency: string;
  notes: string;
}

function fromLead(lead: Lead | undefined, brandId: string, currency: string): Fields {
  const value = lead?.estimatedValue;
  return {
    brandId: lead?.brandId ?? brandId,
    contactName: lead?.contactName ?? '',
    email: lead?.email ?? '',
    phone: lead?.phone ?? '',
    company: lead?.company ?? '',
    source: lead?.source ?? '',
    amount: value && value.currencyCode ? minorToDecimal(value.amountMinor, minorDigits(value.currencyCode)) : '',
    currency: value?.currencyCode || currency,
    notes: lead?.notes ?? '',
  };
}

const MASKED: [keyof Fields, string][] = [
  ['contactName', 'contact_name'],
  ['email', 'email'],
  ['phone', 'phone'],
  ['company', 'company'],
  ['source', 'source'],
  ['notes', 'notes'],
];

export function LeadForm({
  opened,
  onClose,
  lead,
  brandId,
  onSaved,
}: {
  opened: boolean;
  onClose: () => void;
  /** The lead to edit; absent: a new lead. */
  lead?: Lead;
  /** The brand a new lead goes to, when the dashboard is on one. */
  brandId: string | null;
  onSaved: (lead: Lead) => void;
}) {
  const principal = usePrincipal();
  const { brands, byId } = useBrands();
  const writable = brandsWith(principal, P.leadWrite);
  const choices = brands.filter((b) => !b.archived && (writable === 'all' || writable.includes(b.id)));
  const initialBrand = lead?.brandId ?? brandId ?? (choices.length === 1 ? choices[0]!.id : '');
  const currency = byId.get(initialBrand)?.defaultCurrency || 'EUR';
  const initial = useMemo(() => fromLead(lead, initialBrand, currency), [lead, initialBrand, currency]);
  const [f, setF] = useState<Fields>(initial);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [requestId, setRequestId] = useState(() => crypto.randomUUID());
  const [amountError, setAmountError] = useState<string | null>(null);
  const create = useMutation(SalesService.method.createLead);
  const update = useMutation(SalesService.method.updateLead);

  useEffect(() => {
    if (opened) {
      setF(initial);
      setProblem(null);
      setAmountError(null);
      setRequestId(crypto.randomUUID());
    }
  }, [opened, initial]);

  const set = (key: keyof Fields) => (value: string) => setF((old) => ({ ...old, [key]: value }));
  const err = (path: string) => fieldError(problem, `lead.${path}`);

  async function submit() {
    setProblem(null);
    setAmountError(null);
    let estimatedValue: { currencyCode: string; amountMinor: bigint } | undefined;
    if (f.amount.trim() !== '') {
      const minor = parseMinor(f.amount, f.currency);
      if (minor === null) {
        setAmountError(`Enter an amount in ${f.currency}, such as 1250.00`);
        return;
      }
      estimatedValue = { currencyCode: f.currency, amountMinor: minor };
    }
    const fields = {
      brandId: f.brandId,
      contactName: f.contactName.trim(),
      email: f.email.trim(),
      phone: f.phone.trim(),
      company: f.company.trim(),
      source: f.source.trim(),
      notes: f.notes,
      estimatedValue,
    };
    try {
      if (lead) {
        const paths = MASKED.filter(([key]) => f[key] !== initial[key]).map(([, path]) => path);
        if (f.amount !== initial.amount || f.currency !== initial.currency) paths.push('estimated_value');
        if (paths.length === 0) return onClose();
        const answer = await update.mutateAsync({
          lead: { ...fields, id: lead.id, etag: lead.etag },
          updateMask: { paths },
        });
        if (answer.lead) onSaved(answer.lead);
      } else {
        const answer = await create.mutateAsync({ lead: fields, requestId });
        if (answer.lead) onSaved(answer.lead);
      }
      onClose();
    } catch (error) {
      setProblem(toProblem(error));
    }
  }

  const busy = create.isPending || update.isPending;
  const general = problem && Object.keys(problem.fields).length === 0;
  return (
    <Modal opened={opened} onClose={onClose} title={lead ? 'Edit lead' : 'New lead'} size="lg">
      <form
        aria-label={lead ? 'Edit lead' : 'New lead'}
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <Stack>
          {!lead && (
            <Select
              label="Brand"
              required
              data={choices.map((b) => ({ value: b.id, label: b.name }))}
              value={f.brandId || null}
              onChange={(v) => set('brandId')(v ?? '')}
              error={err('brand_id')}
              disabled={brandId !== null}
            />
          )}
          <SimpleGrid cols={{ base: 1, sm: 2 }}>
            <TextInput
              label="Contact name"
              required
              data-autofocus
              value={f.contactName}
              onChange={(e) => set('contactName')(e.currentTarget.value)}
              error={err('contact_name')}
            />
            <TextInput label="Company" value={f.company} onChange={(e) => set('company')(e.currentTarget.value)} error={err('company')} />
            <TextInput label="Email" type="text" inputMode="email" value={f.email} onChange={(e) => set('email')(e.currentTarget.value)} error={err('email')} />
            <TextInput label="Phone" type="tel" value={f.phone} onChange={(e) => set('phone')(e.currentTarget.value)} error={err('phone')} />
            <TextInput
              label="Source"
              placeholder="website, referral…"
              value={f.source}
              onChange={(e) => set('source')(e.currentTarget.value)}
              error={err('source')}
            />
            <Group gap="xs" align="flex-start" wrap="nowrap">
              <TextInput
                label="Estimated value"
                inputMode="decimal"
                style={{ flex: 1 }}
                value={f.amount}
                onChange={(e) => set('amount')(e.currentTarget.value)}
                error={amountError ?? err('estimated_value')}
              />
              <Select
                label="Currency"
                w={96}
                data={CURRENCIES}
                value={f.currency}
                onChange={(v) => set('currency')(v ?? 'EUR')}
                allowDeselect={false}
              />
            </Group>
          </SimpleGrid>
          <Textarea label="Notes" autosize minRows={2} value={f.notes} onChange={(e) => set('notes')(e.currentTarget.value)} error={err('notes')} />
          {general && <ErrorAlert error={problem} />}
          <Group justify="flex-end">
            <Button variant="default" onClick={onClose}>
              Cancel
            </Button>
            <Button type="submit" loading={busy}>
              {lead ? 'Save' : 'Create lead'}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}
