/**
 * A brand's automation rules: what fires them (an event, or days from an invoice's due date), the
 * template and the recipient; turning one on or off, and adding one.
 */
import { useState } from 'react';
import { Badge, Button, Card, Group, NumberInput, SegmentedControl, Select, Stack, Switch, Table, TextInput } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { AutomationService } from '@sentra/shared/api';
import { AutomationDate, AutomationRecipient, type AutomationRule } from '@sentra/shared/gen/sentra/comm/v1/automation_service_pb';
import { fieldError, toProblem, type Problem } from '@sentra/shared/errors';
import { ErrorAlert, ListTable, QueryView } from '@sentra/shared/ui';
import { useInvalidate } from '../../data';

/** The events rules can wait for, as people read them. */
export const EVENTS: Record<string, string> = {
  'finance.invoice.overdue': 'An invoice became overdue',
  'finance.invoice.issued': 'An invoice was issued',
  'finance.invoice.payment_recorded': 'A payment was recorded',
  'sales.order.confirmed': 'An order was confirmed',
  'sales.lead.created': 'A lead was captured',
  'sales.lead.assigned': 'A lead was assigned',
  'sales.lead.stage_changed': 'A lead changed stage',
  'sales.client.created': 'A client was created',
};

function describe(rule: AutomationRule): string {
  if (rule.trigger.case === 'eventType') return EVENTS[rule.trigger.value] ?? rule.trigger.value;
  if (rule.trigger.case === 'dateOffset') {
    const days = rule.trigger.value.days;
    if (days === 0) return 'On the invoice due date';
    return `${Math.abs(days)} day${Math.abs(days) === 1 ? '' : 's'} ${days < 0 ? 'before' : 'after'} the invoice due date`;
  }
  return '—';
}

function EnabledSwitch({ brandId, rule, writable }: { brandId: string; rule: AutomationRule; writable: boolean }) {
  const invalidate = useInvalidate();
  const update = useMutation(AutomationService.method.updateAutomationRule);
  return (
    <>
      <Switch
        aria-label={`${rule.name} enabled`}
        checked={rule.enabled}
        disabled={!writable || update.isPending}
        onChange={(e) =>
          update
            .mutateAsync({ brandId, rule: { ...rule, enabled: e.currentTarget.checked }, updateMask: { paths: ['enabled'] } })
            .then(() => invalidate(AutomationService))
            .catch(() => undefined)
        }
      />
      {update.error && <ErrorAlert error={update.error} />}
    </>
  );
}

function NewRule({ brandId, onDone }: { brandId: string; onDone: () => void }) {
  const invalidate = useInvalidate();
  const templates = useQuery(AutomationService.method.listEmailTemplates, { brandId });
  const create = useMutation(AutomationService.method.createAutomationRule);
  const [requestId] = useState(() => crypto.randomUUID());
  const [problem, setProblem] = useState<Problem | null>(null);
  const [f, setF] = useState({ name: 'Overdue reminder', kind: 'event', event: 'finance.invoice.overdue', days: -3, templateId: '', agent: false });
  const save = () => {
    setProblem(null);
    const trigger =
      f.kind === 'event'
        ? { case: 'eventType' as const, value: f.event }
        : { case: 'dateOffset' as const, value: { date: AutomationDate.INVOICE_DUE, days: f.days } };
    create
      .mutateAsync({
        brandId,
        requestId,
        rule: {
          name: f.name,
          enabled: true,
          trigger,
          templateId: f.templateId,
          recipient: f.agent ? AutomationRecipient.ASSIGNED_AGENT : AutomationRecipient.CLIENT_CONTACT,
        },
      })
      .then(() => invalidate(AutomationService))
      .then(onDone)
      .catch((error: unknown) => setProblem(toProblem(error)));
  };
  return (
    <Card withBorder>
      <Stack gap="sm">
        <TextInput label="Name" value={f.name} onChange={(e) => setF({ ...f, name: e.currentTarget.value })} error={fieldError(problem, 'rule.name')} />
        <SegmentedControl
          value={f.kind}
          onChange={(kind) => setF({ ...f, kind })}
          data={[
            { value: 'event', label: 'When something happens' },
            { value: 'date', label: 'Around an invoice due date' },
          ]}
        />
        {f.kind === 'event' ? (
          <Select
            label="Event"
            data={Object.entries(EVENTS).map(([value, label]) => ({ value, label }))}
            value={f.event}
            onChange={(event) => setF({ ...f, event: event ?? f.event })}
            allowDeselect={false}
            error={fieldError(problem, 'rule.event_type')}
          />
        ) : (
          <NumberInput
            label="Days from the due date (negative: before)"
            value={f.days}
            onChange={(days) => setF({ ...f, days: Number(days) || 0 })}
            error={fieldError(problem, 'rule.date_offset.days')}
          />
        )}
        <Select
          label="Template"
          placeholder={templates.data?.templates.length ? 'Choose a template' : 'Write a template first'}
          data={(templates.data?.templates ?? []).map((t) => ({ value: t.templateId, label: t.name }))}
          value={f.templateId || null}
          onChange={(templateId) => setF({ ...f, templateId: templateId ?? '' })}
          error={fieldError(problem, 'rule.template_id')}
        />
        <Switch
          label="Send to the assigned agent instead of the client (lead events)"
          checked={f.agent}
          onChange={(e) => setF({ ...f, agent: e.currentTarget.checked })}
        />
        {fieldError(problem, 'rule.recipient') && <ErrorAlert error={problem} />}
        {problem && Object.keys(problem.fields).length === 0 && <ErrorAlert error={problem} />}
        <Group justify="flex-end">
          <Button variant="default" onClick={onDone}>
            Cancel
          </Button>
          <Button onClick={save} loading={create.isPending} disabled={!f.templateId}>
            Add rule
          </Button>
        </Group>
      </Stack>
    </Card>
  );
}

export function Rules({ brandId, writable }: { brandId: string; writable: boolean }) {
  const rules = useQuery(AutomationService.method.listAutomationRules, { brandId });
  const templates = useQuery(AutomationService.method.listEmailTemplates, { brandId });
  const [adding, setAdding] = useState(false);
  const templateName = (id: string) => templates.data?.templates.find((t) => t.templateId === id)?.name ?? '—';
  return (
    <Stack>
      {adding && <NewRule brandId={brandId} onDone={() => setAdding(false)} />}
      <Card withBorder padding={0}>
        {writable && !adding && (
          <Group justify="flex-end" p="sm">
            <Button onClick={() => setAdding(true)}>New rule</Button>
          </Group>
        )}
        <QueryView query={rules} isEmpty={(d) => d.rules.length === 0} empty="No rule yet: nothing is sent automatically.">
          {(data) => (
            <ListTable minWidth={640} testId="rules-table" columns={['Rule', 'When', 'Sends', 'To', 'On']}>
              {data.rules.map((r) => (
                <Table.Tr key={r.ruleId}>
                  <Table.Td>{r.name}</Table.Td>
                  <Table.Td>{describe(r)}</Table.Td>
                  <Table.Td>{templateName(r.templateId)}</Table.Td>
                  <Table.Td>
                    <Badge variant="light">{r.recipient === AutomationRecipient.ASSIGNED_AGENT ? 'Assigned agent' : 'Client'}</Badge>
                  </Table.Td>
                  <Table.Td>
                    <EnabledSwitch brandId={brandId} rule={r} writable={writable} />
                  </Table.Td>
                </Table.Tr>
              ))}
            </ListTable>
          )}
        </QueryView>
      </Card>
    </Stack>
  );
}
