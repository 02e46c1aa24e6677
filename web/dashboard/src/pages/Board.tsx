/**
 * The pipeline board: leads as cards in stage columns. Drag a card (or use its "Move" menu, from
 * the keyboard or on a phone) to move it; the move carries the card's etag, and if someone else
 * changed the lead meanwhile the card goes back, the lead is shown as it stands, and a message
 * says so. Dropping on Won converts, on Lost asks for a reason. The board is live: what others
 * change appears within a second, without a reload (see `useLiveLeads`).
 */
import { memo, useCallback, useRef, useState } from 'react';
import {
  ActionIcon,
  Alert,
  Badge,
  Box,
  Button,
  Card,
  Group,
  Menu,
  ScrollArea,
  Select,
  Stack,
  Text,
  TextInput,
} from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { notifications } from '@mantine/notifications';
import {
  DndContext,
  PointerSensor,
  useDraggable,
  useDroppable,
  useSensor,
  useSensors,
  type DragEndEvent,
} from '@dnd-kit/core';
import { useInfiniteQuery } from '@connectrpc/connect-query';
import { Link } from 'react-router';
import { SalesService } from '@sentra/shared/api';
import { LeadStage, type Lead } from '@sentra/shared/gen/sentra/sales/v1/resources_pb';
import { STAGE_COLOR, STAGE_LABEL } from '@sentra/shared/labels';
import { formatMoney } from '@sentra/shared/money';
import { P, canSomewhere, canWriteLead } from '@sentra/shared/permissions';
import { ErrorAlert, PageHeader, usePrincipal, useSentra } from '@sentra/shared/ui';
import type { Principal } from '@sentra/shared/claims';
import { type BoardFilters, arrangeColumns, matchesFilters, moveLead, planMove, version } from '../board/logic';
import { useLiveLeads } from '../board/useLiveLeads';
import { useScope } from '../layout/scope';
import { useInvalidate, useUsers } from '../data';
import { LeadForm } from '../leads/LeadForm';
import { ConvertDialog, LostDialog } from '../leads/actions';

const COLUMNS = [
  LeadStage.NEW,
  LeadStage.CONTACTED,
  LeadStage.QUALIFIED,
  LeadStage.PROPOSAL,
  LeadStage.NEGOTIATION,
  LeadStage.WON,
  LeadStage.LOST,
] as const;

const PAGE = 100;

type Filters = BoardFilters;

function useColumn(stage: LeadStage, filters: Filters) {
  return useInfiniteQuery(
    SalesService.method.listLeads,
    { ...filters, stages: [stage], pageSize: PAGE, pageToken: '' },
    { pageParamKey: 'pageToken', getNextPageParam: (last) => last.nextPageToken || undefined },
  );
}

interface CardProps {
  lead: Lead;
  writable: boolean;
  assignee: string;
  onMove: (lead: Lead, to: LeadStage) => void;
}

/**
 * What a card shows. Memoized: while a card is dragged, dnd-kit re-renders every draggable on
 * each pointer move, and only the thin wrapper below should pay for that, not 500 card bodies.
 */
const CardBody = memo(function CardBody({ lead, writable, assignee, onMove }: CardProps) {
  const targets = COLUMNS.filter((s) => planMove(lead.stage, s).kind !== 'illegal' && s !== lead.stage);
  return (
    <Card withBorder padding="sm" radius="md" shadow="xs">
      <Group justify="space-between" wrap="nowrap" align="flex-start" gap={4}>
        <Box style={{ minWidth: 0 }}>
          <Text
            component={Link}
            to={`/leads/${lead.id}`}
            fw={600}
            size="sm"
            truncate
            display="block"
            onPointerDown={(e: React.PointerEvent) => e.stopPropagation()}
          >
            {lead.contactName}
          </Text>
          {lead.company && (
            <Text size="xs" c="dimmed" truncate>
              {lead.company}
            </Text>
          )}
        </Box>
        {writable && targets.length > 0 && (
          <Menu position="bottom-end" withinPortal>
            <Menu.Target>
              <ActionIcon
                variant="subtle"
                size="sm"
                aria-label={`Move ${lead.contactName}`}
                onPointerDown={(e: React.PointerEvent) => e.stopPropagation()}
                onKeyDown={(e: React.KeyboardEvent) => e.stopPropagation()}
              >
                ⋯
              </ActionIcon>
            </Menu.Target>
            {/* React events bubble out of portals: keep the card's drag sensors out of the menu. */}
            <Menu.Dropdown onKeyDown={(e) => e.stopPropagation()} onPointerDown={(e) => e.stopPropagation()}>
              <Menu.Label>Move to</Menu.Label>
              {targets.map((s) => (
                <Menu.Item key={s} onClick={() => onMove(lead, s)}>
                  {STAGE_LABEL[s]}
                </Menu.Item>
              ))}
            </Menu.Dropdown>
          </Menu>
        )}
      </Group>
      <Group justify="space-between" mt={6} gap={4} wrap="nowrap">
        <Text size="xs" fw={500} style={{ fontVariantNumeric: 'tabular-nums' }}>
          {lead.estimatedValue?.currencyCode ? formatMoney(lead.estimatedValue) : ''}
        </Text>
        <Text size="xs" c="dimmed" truncate>
          {assignee || 'Unassigned'}
        </Text>
      </Group>
    </Card>
  );
});

function LeadCard({
  lead,
  principal,
  assignee,
  conflict,
  saving,
  onMove,
}: {
  lead: Lead;
  principal: Principal;
  assignee: string;
  conflict: boolean;
  /** A move of this card is on its way to the server: shown in place, not yet kept. */
  saving: boolean;
  onMove: (lead: Lead, to: LeadStage) => void;
}) {
  const writable = canWriteLead(principal, lead);
  // Pointer dragging only: the wrapper is not a focusable control (it holds a link and a menu
  // button, which must not nest in one); from the keyboard, the card's "Move" menu moves it.
  const { listeners, setNodeRef, transform, isDragging } = useDraggable({
    id: lead.id,
    data: { lead },
    disabled: !writable,
  });
  return (
    <div
      ref={setNodeRef}
      style={{
        transform: transform ? `translate3d(${transform.x}px, ${transform.y}px, 0)` : undefined,
        zIndex: transform ? 10 : undefined,
        cursor: writable ? 'grab' : 'default',
        opacity: isDragging ? 0.85 : saving ? 0.6 : 1,
        borderRadius: 'var(--mantine-radius-md)',
        outline: conflict ? '2px solid var(--mantine-color-red-6)' : undefined,
        boxShadow: isDragging ? 'var(--mantine-shadow-md)' : undefined,
        touchAction: 'manipulation',
      }}
      data-testid="lead-card"
      data-lead-id={lead.id}
      data-stage={STAGE_LABEL[lead.stage]}
      data-writable={writable}
      data-conflict={conflict || undefined}
      aria-busy={saving || undefined}
      {...(writable ? listeners : {})}
    >
      <CardBody lead={lead} writable={writable} assignee={assignee} onMove={onMove} />
    </div>
  );
}

function Column({
  stage,
  query,
  leads,
  children,
}: {
  stage: LeadStage;
  query: ReturnType<typeof useColumn>;
  leads: Lead[];
  children: React.ReactNode;
}) {
  const { setNodeRef, isOver } = useDroppable({ id: String(stage), data: { stage } });
  return (
    <Stack
      ref={setNodeRef}
      gap="xs"
      p="xs"
      w={232}
      miw={232}
      style={{
        borderRadius: 'var(--mantine-radius-md)',
        background: isOver ? 'var(--mantine-color-brand-0)' : 'var(--mantine-color-gray-0)',
        alignSelf: 'flex-start',
        minHeight: 200,
      }}
      data-testid="board-column"
      data-stage={STAGE_LABEL[stage]}
      aria-label={`${STAGE_LABEL[stage]} column`}
      role="region"
    >
      <Group justify="space-between">
        <Badge color={STAGE_COLOR[stage]}>
          {STAGE_LABEL[stage]}
        </Badge>
        <Text size="xs" c="dimmed" data-testid="column-count">
          {leads.length}
          {query.hasNextPage ? '+' : ''}
        </Text>
      </Group>
      {query.error && <ErrorAlert error={query.error} onRetry={() => void query.refetch()} />}
      {children}
      {query.isPending && (
        <Text size="xs" c="dimmed" ta="center">
          Loading…
        </Text>
      )}
      {!query.isPending && leads.length === 0 && (
        <Text size="xs" c="dimmed" ta="center" py="md">
          No leads
        </Text>
      )}
      {query.hasNextPage && (
        <Button size="xs" variant="subtle" loading={query.isFetchingNextPage} onClick={() => void query.fetchNextPage()}>
          Show more
        </Button>
      )}
    </Stack>
  );
}

/** One query per column; `COLUMNS` never changes, so the hooks keep their order. */
function useColumns(filters: Filters) {
  return COLUMNS.map((stage) => useColumn(stage, filters));
}

interface ConflictNote {
  leadId: string;
  text: string;
}

export default function Board() {
  const principal = usePrincipal();
  const { clients } = useSentra();
  const scope = useScope();
  const users = useUsers();
  const invalidate = useInvalidate();
  const [search, setSearch] = useState('');
  const [debounced] = useDebouncedValue(search, 300);
  const [assignee, setAssignee] = useState<string>('');
  const [overrides, setOverrides] = useState<Map<string, Lead>>(new Map());
  const [saving, setSaving] = useState<ReadonlySet<string>>(new Set());
  const [conflict, setConflict] = useState<ConflictNote | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const [creating, setCreating] = useState(false);
  const [converting, setConverting] = useState<Lead | null>(null);
  const [losing, setLosing] = useState<Lead | null>(null);
  const filters: Filters = { brandId: scope.brandId ?? '', assigneeId: assignee, query: debounced.trim() };
  const queries = useColumns(filters);
  const fetched = queries.flatMap((query) => query.data?.pages.flatMap((page) => page.leads) ?? []);
  const columns = arrangeColumns(fetched, overrides, COLUMNS);
  const sensors = useSensors(useSensor(PointerSensor, { activationConstraint: { distance: 6 } }));

  const setOverride = (id: string, lead: Lead | null) =>
    setOverrides((old) => {
      const next = new Map(old);
      if (lead) next.set(id, lead);
      else next.delete(id);
      return next;
    });

  // Someone else's change, live: drawn at once when it belongs on this board (the newer version
  // wins, see `arrangeColumns`); otherwise the columns are refetched to let it go.
  const live = useLiveLeads(
    filters.brandId,
    (lead) => {
      if (matchesFilters(lead, filters)) {
        setOverrides((old) => {
          const mine = old.get(lead.id);
          if (mine && version(mine) > version(lead)) return old;
          return new Map(old).set(lead.id, lead);
        });
      } else {
        setOverride(lead.id, null);
        void invalidate(SalesService);
      }
    },
    () => void invalidate(SalesService),
  );

  /** Draws `lead` as the server answered and refetches the columns (see `arrangeColumns`). */
  const settle = async (lead: Lead | null, id: string) => {
    setOverride(id, lead);
    await invalidate(SalesService);
  };

  async function move(lead: Lead, to: LeadStage) {
    const plan = planMove(lead.stage, to);
    setFailure(null);
    switch (plan.kind) {
      case 'none':
        return;
      case 'illegal':
        notifications.show({ color: 'yellow', title: 'Not a possible move', message: plan.reason });
        return;
      case 'convert':
        setConverting(lead);
        return;
      case 'mark-lost':
        setLosing(lead);
        return;
      case 'change-stage': {
        setConflict(null);
        setOverride(lead.id, { ...lead, stage: plan.to });
        setSaving((old) => new Set(old).add(lead.id));
        const outcome = await moveLead(clients.sales, lead, plan.to);
        setSaving((old) => {
          const next = new Set(old);
          next.delete(lead.id);
          return next;
        });
        if (outcome.ok) {
          await settle(outcome.lead, lead.id);
        } else if (outcome.conflict) {
          const now = outcome.fresh ?? lead;
          setConflict({
            leadId: lead.id,
            text: `${now.contactName} was changed by someone else in the meantime and is now in ${STAGE_LABEL[now.stage]}. Your move was not applied; the lead is shown as it is now.`,
          });
          await settle(outcome.fresh, lead.id);
        } else {
          await settle(null, lead.id);
          setFailure(outcome.problem);
        }
      }
    }
  }

  // One callback for every card's menu, stable across renders so memoized cards stay put.
  const moveRef = useRef(move);
  moveRef.current = move;
  const onMove = useCallback((lead: Lead, to: LeadStage) => void moveRef.current(lead, to), []);

  const onDragEnd = (event: DragEndEvent) => {
    const lead = event.active.data.current?.lead as Lead | undefined;
    const stage = event.over?.data.current?.stage as LeadStage | undefined;
    if (lead && stage !== undefined) void move(lead, stage);
  };

  const canCreate = canSomewhere(principal, P.leadWrite);
  return (
    <>
      <PageHeader
        title="Pipeline"
        actions={
          <>
            <Badge
              variant="dot"
              color={live ? 'green' : 'gray'}
              data-testid="live-indicator"
              data-live={live}
              title={live ? 'Changes by others appear as they happen' : 'Connecting to live updates…'}
            >
              {live ? 'Live' : 'Connecting…'}
            </Badge>
            {canCreate && (
              <Button onClick={() => setCreating(true)} data-testid="new-lead">
                New lead
              </Button>
            )}
          </>
        }
      />
      <Group mb="md" gap="sm" align="flex-end">
        <TextInput
          label="Search"
          placeholder="Name, email or company"
          value={search}
          onChange={(e) => setSearch(e.currentTarget.value)}
          w={260}
        />
        <Select
          label="Assignee"
          w={220}
          data={[
            { value: '', label: 'Anyone' },
            { value: principal.userId, label: 'Me' },
            ...users.users.filter((u) => u.id !== principal.userId).map((u) => ({ value: u.id, label: u.displayName })),
          ]}
          value={assignee}
          onChange={(v) => setAssignee(v ?? '')}
          allowDeselect={false}
          searchable
        />
      </Group>
      {conflict && (
        <Alert color="orange" mb="md" role="alert" withCloseButton onClose={() => setConflict(null)} data-testid="conflict-message">
          {conflict.text}
        </Alert>
      )}
      {failure !== null && (
        <Box mb="md">
          <ErrorAlert error={failure} title="The lead was not moved" />
        </Box>
      )}
      <DndContext sensors={sensors} onDragEnd={onDragEnd}>
        <ScrollArea type="auto" offsetScrollbars>
          <Group align="flex-start" wrap="nowrap" gap="sm" pb="md" data-testid="board">
            {COLUMNS.map((stage, i) => {
              const leads = columns.get(stage) ?? [];
              return (
                <Column key={stage} stage={stage} query={queries[i]!} leads={leads}>
                  {leads.map((lead) => (
                    <LeadCard
                      key={lead.id}
                      lead={lead}
                      principal={principal}
                      assignee={users.name(lead.assigneeId)}
                      conflict={conflict?.leadId === lead.id}
                      saving={saving.has(lead.id)}
                      onMove={onMove}
                    />
                  ))}
                </Column>
              );
            })}
          </Group>
        </ScrollArea>
      </DndContext>
      <LeadForm
        opened={creating}
        onClose={() => setCreating(false)}
        brandId={scope.brandId}
        onSaved={(lead) => {
          notifications.show({ color: 'green', message: `Lead ${lead.contactName} created.` });
          void invalidate(SalesService);
        }}
      />
      <ConvertDialog
        lead={converting}
        onClose={() => setConverting(null)}
        onDone={(lead) => {
          notifications.show({ color: 'green', message: `${lead.contactName} is now a client.` });
          void settle(lead, lead.id);
        }}
      />
      <LostDialog lead={losing} onClose={() => setLosing(null)} onDone={(lead) => void settle(lead, lead.id)} />
    </>
  );
}
