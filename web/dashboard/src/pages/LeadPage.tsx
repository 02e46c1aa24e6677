/**
 * One lead: its details, notes, the actions the person's role allows (edit, assign, move, mark
 * lost, reopen, convert), and its history (who did what, when, old -> new).
 */
import { useState } from 'react';
import { Anchor, Badge, Button, Card, Grid, Group, Stack, Table, Text, Textarea, Timeline, Title } from '@mantine/core';
import { notifications } from '@mantine/notifications';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { Link, useNavigate, useParams } from 'react-router';
import { SalesService } from '@sentra/shared/api';
import { LeadStage, type Lead } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { formatMinor } from '@sentra/shared/money';
import { STAGE_COLOR, STAGE_LABEL } from '@sentra/shared/labels';
import { P, can, canWriteLead } from '@sentra/shared/permissions';
import { ErrorAlert, Money, PageHeader, QueryView, When, usePrincipal } from '@sentra/shared/ui';
import { useBrands, useInvalidate, useUsers } from '../data';
import { Conversations } from '../comm/Conversations';
import { LeadForm } from '../leads/LeadForm';
import { AssignDialog, ConvertDialog, LostDialog } from '../leads/actions';

function Detail({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <Table.Tr>
      <Table.Th w={160} c="dimmed" fw={500}>
        {label}
      </Table.Th>
      <Table.Td>{children || '—'}</Table.Td>
    </Table.Tr>
  );
}

function Notes({ lead, writable, onAdded }: { lead: Lead; writable: boolean; onAdded: () => void }) {
  const users = useUsers();
  const [text, setText] = useState('');
  const add = useMutation(SalesService.method.addLeadNote);
  return (
    <Card withBorder>
      <Title order={4} mb="sm">
        Notes
      </Title>
      <Stack gap="sm">
        {lead.activityNotes.length === 0 && (
          <Text size="sm" c="dimmed">
            No notes yet.
          </Text>
        )}
        {lead.activityNotes.map((note, i) => (
          <div key={i} data-testid="lead-note">
            <Text size="sm" style={{ whiteSpace: 'pre-wrap' }}>
              {note.text}
            </Text>
            <Text size="xs" c="dimmed">
              {users.name(note.authorId)} · <When value={note.createTime} />
            </Text>
          </div>
        ))}
        {writable && (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              add
                .mutateAsync({ leadId: lead.id, text: text.trim() })
                .then(() => {
                  setText('');
                  onAdded();
                })
                .catch(() => undefined);
            }}
          >
            <Stack gap="xs">
              <Textarea label="Add a note" autosize minRows={2} value={text} onChange={(e) => setText(e.currentTarget.value)} />
              {add.error && <ErrorAlert error={add.error} />}
              <Group justify="flex-end">
                <Button type="submit" size="xs" loading={add.isPending} disabled={!text.trim()}>
                  Add note
                </Button>
              </Group>
            </Stack>
          </form>
        )}
      </Stack>
    </Card>
  );
}

const FIELD_LABEL: Record<string, string> = {
  contact_name: 'Contact name',
  assignee_id: 'Assignee',
  client_id: 'Client',
  estimated_value: 'Estimated value',
  lost_reason: 'Lost because',
};

/** Stage names as the board shows them; user ids as names. */
function useChangeValue() {
  const users = useUsers();
  return (field: string, value: string) => {
    if (!value) return '—';
    if (field === 'stage') {
      const stage = LeadStage[value as keyof typeof LeadStage];
      return stage !== undefined ? STAGE_LABEL[stage] : value;
    }
    if (field === 'assignee_id') return users.name(value);
    if (field === 'estimated_value') {
      // "<currency> <minor units>", as the history records it.
      const [currency, minor] = value.split(' ');
      if (currency && minor && /^-?\d+$/.test(minor)) return formatMinor(BigInt(minor), currency);
    }
    return value;
  };
}

function History({ leadId }: { leadId: string }) {
  const users = useUsers();
  const show = useChangeValue();
  const history = useQuery(SalesService.method.getLeadHistory, { leadId });
  return (
    <Card withBorder>
      <Title order={4} mb="sm">
        History
      </Title>
      <QueryView query={history} isEmpty={(d) => d.entries.length === 0}>
        {(data) => (
          <Timeline bulletSize={14} lineWidth={2} data-testid="history">
            {data.entries.map((entry) => (
              <Timeline.Item key={String(entry.sequence)} title={entry.summary} data-testid="history-entry">
                <Text size="xs" c="dimmed">
                  {users.name(entry.actorId) || 'System'} · <When value={entry.time} />
                </Text>
                {entry.changes.some((c) => c.oldValue || c.newValue) && (
                  <Stack gap={2} mt={4}>
                    {entry.changes
                      .filter((c) => c.oldValue || c.newValue)
                      .map((c) => (
                        <Text size="xs" key={c.field}>
                          <Text span fw={600} inherit>
                            {FIELD_LABEL[c.field] ?? capitalize(c.field.replace(/_/g, ' '))}
                          </Text>
                          : {show(c.field, c.oldValue)} → {show(c.field, c.newValue)}
                        </Text>
                      ))}
                  </Stack>
                )}
              </Timeline.Item>
            ))}
          </Timeline>
        )}
      </QueryView>
    </Card>
  );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export default function LeadPage() {
  const { leadId = '' } = useParams();
  const navigate = useNavigate();
  const principal = usePrincipal();
  const users = useUsers();
  const { byId: brands } = useBrands();
  const invalidate = useInvalidate();
  const query = useQuery(SalesService.method.getLead, { leadId });
  const reopen = useMutation(SalesService.method.reopenLead);
  const [editing, setEditing] = useState(false);
  const [assigning, setAssigning] = useState<Lead | null>(null);
  const [converting, setConverting] = useState<Lead | null>(null);
  const [losing, setLosing] = useState<Lead | null>(null);
  const refresh = () => void invalidate(SalesService);

  return (
    <QueryView query={query}>
      {({ lead }) => {
        if (!lead) return null;
        const writable = canWriteLead(principal, lead);
        const open = lead.stage !== LeadStage.WON && lead.stage !== LeadStage.LOST;
        const winnable = [LeadStage.QUALIFIED, LeadStage.PROPOSAL, LeadStage.NEGOTIATION].includes(lead.stage);
        return (
          <>
            <PageHeader
              title={
                <Group gap="sm">
                  {lead.contactName}
                  <Badge color={STAGE_COLOR[lead.stage]} data-testid="lead-stage">
                    {STAGE_LABEL[lead.stage]}
                  </Badge>
                </Group>
              }
              actions={
                <>
                  {writable && open && (
                    <Button variant="default" onClick={() => setEditing(true)}>
                      Edit
                    </Button>
                  )}
                  {can(principal, P.leadAssign, lead.brandId) && open && (
                    <Button variant="default" onClick={() => setAssigning(lead)}>
                      Assign
                    </Button>
                  )}
                  {writable && winnable && can(principal, P.clientWrite, lead.brandId) && (
                    <Button color="green" onClick={() => setConverting(lead)}>
                      Convert to client
                    </Button>
                  )}
                  {writable && open && (
                    <Button color="red" variant="light" onClick={() => setLosing(lead)}>
                      Mark lost
                    </Button>
                  )}
                  {writable && lead.stage === LeadStage.LOST && (
                    <Button
                      variant="light"
                      loading={reopen.isPending}
                      onClick={() =>
                        reopen
                          .mutateAsync({ leadId: lead.id, etag: lead.etag })
                          .then(refresh)
                          .catch(() => undefined)
                      }
                    >
                      Reopen
                    </Button>
                  )}
                </>
              }
            >
              {lead.company}
            </PageHeader>
            {reopen.error && <ErrorAlert error={reopen.error} />}
            <Grid gutter="md">
              <Grid.Col span={{ base: 12, md: 7 }}>
                <Stack>
                  <Card withBorder>
                    <Table>
                      <Table.Tbody>
                        <Detail label="Brand">{brands.get(lead.brandId)?.name}</Detail>
                        <Detail label="Email">{lead.email && <Anchor href={`mailto:${lead.email}`}>{lead.email}</Anchor>}</Detail>
                        <Detail label="Phone">{lead.phone}</Detail>
                        <Detail label="Company">{lead.company}</Detail>
                        <Detail label="Source">{lead.source}</Detail>
                        <Detail label="Estimated value">{lead.estimatedValue?.currencyCode && <Money value={lead.estimatedValue} />}</Detail>
                        <Detail label="Assignee">{users.name(lead.assigneeId) || 'Unassigned'}</Detail>
                        {lead.stage === LeadStage.LOST && <Detail label="Lost because">{lead.lostReason}</Detail>}
                        {lead.clientId && (
                          <Detail label="Client">
                            <Anchor component={Link} to={`/clients/${lead.clientId}`}>
                              Open the client
                            </Anchor>
                          </Detail>
                        )}
                        <Detail label="Created">
                          <When value={lead.createTime} />
                        </Detail>
                        {lead.notes && <Detail label="Notes">{lead.notes}</Detail>}
                      </Table.Tbody>
                    </Table>
                  </Card>
                  <Notes lead={lead} writable={writable} onAdded={refresh} />
                  <Conversations leadId={lead.id} brandId={lead.brandId} />
                </Stack>
              </Grid.Col>
              <Grid.Col span={{ base: 12, md: 5 }}>
                <History leadId={lead.id} />
              </Grid.Col>
            </Grid>
            <LeadForm opened={editing} onClose={() => setEditing(false)} lead={lead} brandId={lead.brandId} onSaved={refresh} />
            <AssignDialog lead={assigning} onClose={() => setAssigning(null)} onDone={refresh} />
            <ConvertDialog
              lead={converting}
              onClose={() => setConverting(null)}
              onDone={(_, client) => {
                notifications.show({ color: 'green', message: `${lead.contactName} is now a client.` });
                refresh();
                if (client) navigate(`/clients/${client.id}`);
              }}
            />
            <LostDialog lead={losing} onClose={() => setLosing(null)} onDone={refresh} />
          </>
        );
      }}
    </QueryView>
  );
}
