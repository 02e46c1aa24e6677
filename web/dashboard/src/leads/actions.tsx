/**
 * The lead actions that need a word from the person first: convert (into a new or an existing
 * client), mark lost (with a reason), assign (to an agent or manager of the brand). Each sends the
 * etag the person saw; a refusal stays in the dialog, in words.
 */
import { useEffect, useState } from 'react';
import { Button, Group, Modal, Radio, Select, Stack, Text } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { SalesService, TenancyService } from '@sentra/shared/api';
import { BrandRole } from '@sentra/shared/gen/sentra/tenancy/v1/resources_pb';
import type { Client, Lead } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { ErrorAlert, PromptDialog } from '@sentra/shared/ui';
import { useUsers } from '../data';

export function ConvertDialog({
  lead,
  onClose,
  onDone,
}: {
  lead: Lead | null;
  onClose: () => void;
  onDone: (lead: Lead, client: Client | undefined) => void;
}) {
  const [mode, setMode] = useState<'new' | 'existing'>('new');
  const [clientId, setClientId] = useState<string | null>(null);
  const convert = useMutation(SalesService.method.convertLead);
  const clients = useQuery(
    SalesService.method.listClients,
    { brandId: lead?.brandId ?? '', pageSize: 200 },
    { enabled: lead !== null && mode === 'existing' },
  );
  useEffect(() => {
    setMode('new');
    setClientId(null);
    convert.reset();
  }, [lead?.id]);
  return (
    <Modal opened={lead !== null} onClose={onClose} title="Convert into a client">
      {lead && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            convert
              .mutateAsync({ leadId: lead.id, etag: lead.etag, existingClientId: mode === 'existing' ? (clientId ?? '') : '' })
              .then((r) => {
                if (r.lead) onDone(r.lead, r.client);
                onClose();
              })
              .catch(() => undefined);
          }}
        >
          <Stack>
            <Text size="sm">
              {lead.contactName}
              {lead.company && ` (${lead.company})`} becomes a client; the lead is marked won.
            </Text>
            <Radio.Group value={mode} onChange={(v) => setMode(v as 'new' | 'existing')} label="Client">
              <Stack gap="xs" mt="xs">
                <Radio value="new" label="Create a new client" />
                <Radio value="existing" label="Add to an existing client of the brand" />
              </Stack>
            </Radio.Group>
            {mode === 'existing' && (
              <Select
                label="Existing client"
                searchable
                required
                data={(clients.data?.clients ?? []).map((c) => ({ value: c.id, label: c.company ? `${c.company} — ${c.contactName}` : c.contactName }))}
                value={clientId}
                onChange={setClientId}
                nothingFoundMessage={clients.isPending ? 'Loading…' : 'No client found'}
              />
            )}
            {convert.error && <ErrorAlert error={convert.error} />}
            <Group justify="flex-end">
              <Button variant="default" onClick={onClose}>
                Cancel
              </Button>
              <Button type="submit" color="green" loading={convert.isPending}>
                Convert
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}

export function LostDialog({ lead, onClose, onDone }: { lead: Lead | null; onClose: () => void; onDone: (lead: Lead) => void }) {
  const markLost = useMutation(SalesService.method.markLeadLost);
  return (
    <PromptDialog
      opened={lead !== null}
      onClose={onClose}
      title={`Mark ${lead?.contactName ?? 'lead'} as lost`}
      label="Reason"
      confirm="Mark lost"
      color="red"
      onSubmit={async (reason) => {
        if (!lead) return;
        const r = await markLost.mutateAsync({ leadId: lead.id, reason, etag: lead.etag });
        if (r.lead) onDone(r.lead);
      }}
    />
  );
}

export function AssignDialog({ lead, onClose, onDone }: { lead: Lead | null; onClose: () => void; onDone: (lead: Lead) => void }) {
  const users = useUsers();
  const members = useQuery(TenancyService.method.listBrandMembers, { brandId: lead?.brandId ?? '' }, { enabled: lead !== null });
  const assign = useMutation(SalesService.method.assignLead);
  const [assignee, setAssignee] = useState<string | null>(null);
  useEffect(() => {
    setAssignee(lead?.assigneeId || null);
    assign.reset();
  }, [lead?.id]);
  const eligible = (members.data?.accesses ?? []).filter((a) => a.role === BrandRole.AGENT || a.role === BrandRole.MANAGER);
  return (
    <Modal opened={lead !== null} onClose={onClose} title="Assign lead">
      {lead && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (!assignee) return;
            assign
              .mutateAsync({ leadId: lead.id, assigneeId: assignee, etag: lead.etag })
              .then((r) => {
                if (r.lead) onDone(r.lead);
                onClose();
              })
              .catch(() => undefined);
          }}
        >
          <Stack>
            <Select
              label="Agent"
              required
              searchable
              data={eligible.map((a) => ({ value: a.userId, label: users.name(a.userId) }))}
              value={assignee}
              onChange={setAssignee}
              nothingFoundMessage={members.isPending ? 'Loading…' : 'No agent or manager on this brand'}
            />
            {assign.error && <ErrorAlert error={assign.error} />}
            <Group justify="flex-end">
              <Button variant="default" onClick={onClose}>
                Cancel
              </Button>
              <Button type="submit" loading={assign.isPending} disabled={!assignee}>
                Assign
              </Button>
            </Group>
          </Stack>
        </form>
      )}
    </Modal>
  );
}
