/**
 * Small building blocks every page uses: problem display, loading/empty/error states, money and
 * dates, page headers, and the confirm/prompt dialogs.
 */
import { useState, type ReactNode } from 'react';
import { Alert, Button, Center, Group, Loader, Modal, Stack, Text, TextInput, Textarea, Title } from '@mantine/core';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { toProblem, type Problem } from '../errors';
import { formatMoney, type MoneyLike } from '../money';
import { formatDate, formatTimestamp, type DateLike } from '../format';

/** A failed call, in words, with an optional retry. */
export function ErrorAlert({ error, onRetry, title }: { error: unknown; onRetry?: () => void; title?: string }) {
  const problem: Problem = toProblem(error);
  return (
    <Alert color="red" title={title ?? 'That did not work'} role="alert" data-reason={problem.reason ?? undefined}>
      <Stack gap="xs">
        <Text size="sm">{problem.message}</Text>
        {onRetry && (
          <Group>
            <Button size="xs" variant="light" color="red" onClick={onRetry}>
              Try again
            </Button>
          </Group>
        )}
      </Stack>
    </Alert>
  );
}

/** The shape of a TanStack query that `QueryView` needs. */
interface QueryLike<T> {
  data: T | undefined;
  error: unknown;
  isPending: boolean;
  refetch: () => unknown;
}

/**
 * Loading, error, empty and loaded states of one query, so no page forgets one.
 * `isEmpty` decides when `empty` is shown instead of the children.
 */
export function QueryView<T>({
  query,
  isEmpty,
  empty,
  children,
  label = 'Loading…',
}: {
  query: QueryLike<T>;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
  children: (data: T) => ReactNode;
  label?: string;
}) {
  if (query.isPending) {
    return (
      <Center py="xl" aria-busy="true">
        <Group gap="sm">
          <Loader size="sm" />
          <Text c="dimmed" size="sm">
            {label}
          </Text>
        </Group>
      </Center>
    );
  }
  if (query.error || query.data === undefined) {
    return <ErrorAlert error={query.error} onRetry={() => void query.refetch()} title="Could not load this" />;
  }
  if (isEmpty?.(query.data)) return <EmptyState>{empty ?? 'Nothing here yet.'}</EmptyState>;
  return <>{children(query.data)}</>;
}

/** A quiet box saying there is nothing to show (and what to do about it). */
export function EmptyState({ children }: { children: ReactNode }) {
  return (
    <Center py="xl" data-testid="empty-state">
      <Text c="dimmed" ta="center" size="sm">
        {children}
      </Text>
    </Center>
  );
}

/** An amount in the user's locale from minor units. */
export function Money({ value, fw }: { value: MoneyLike | undefined; fw?: number }) {
  return (
    <Text span fw={fw} style={{ fontVariantNumeric: 'tabular-nums', whiteSpace: 'nowrap' }} inherit={fw === undefined}>
      {formatMoney(value)}
    </Text>
  );
}

/** A point in time in the user's locale. */
export function When({ value }: { value: Timestamp | undefined }) {
  return <>{formatTimestamp(value)}</>;
}

/** A calendar date in the user's locale. */
export function Day({ value }: { value: DateLike | undefined }) {
  return <>{formatDate(value)}</>;
}

/** Title row of a page, with its actions on the right (wrapping on small screens). */
export function PageHeader({ title, actions, children }: { title: ReactNode; actions?: ReactNode; children?: ReactNode }) {
  return (
    <Stack gap={4} mb="md">
      <Group justify="space-between" align="flex-start" wrap="wrap" gap="sm">
        <Title order={2}>{title}</Title>
        {actions && <Group gap="xs">{actions}</Group>}
      </Group>
      {children && (
        <Text c="dimmed" size="sm">
          {children}
        </Text>
      )}
    </Stack>
  );
}

/**
 * A dialog asking for one line of text (a reason, a note) before an action; the action's own
 * failure is shown inside the dialog, which stays open.
 */
export function PromptDialog({
  opened,
  onClose,
  title,
  label,
  confirm,
  color,
  multiline,
  required = true,
  onSubmit,
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  label: string;
  confirm: string;
  color?: string;
  multiline?: boolean;
  required?: boolean;
  onSubmit: (text: string) => Promise<unknown>;
}) {
  const [text, setText] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const Field = multiline ? Textarea : TextInput;
  const close = () => {
    setText('');
    setError(null);
    onClose();
  };
  return (
    <Modal opened={opened} onClose={close} title={title}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          onSubmit(text.trim())
            .then(close)
            .catch(setError)
            .finally(() => setBusy(false));
        }}
      >
        <Stack>
          <Field label={label} value={text} required={required} data-autofocus onChange={(e) => setText(e.currentTarget.value)} />
          {error !== null && <ErrorAlert error={error} />}
          <Group justify="flex-end">
            <Button variant="default" onClick={close}>
              Cancel
            </Button>
            <Button type="submit" color={color} loading={busy}>
              {confirm}
            </Button>
          </Group>
        </Stack>
      </form>
    </Modal>
  );
}

/** "Are you sure?" before an action; the action's failure is shown in the dialog. */
export function ConfirmDialog({
  opened,
  onClose,
  title,
  children,
  confirm,
  color,
  onConfirm,
}: {
  opened: boolean;
  onClose: () => void;
  title: string;
  children: ReactNode;
  confirm: string;
  color?: string;
  onConfirm: () => Promise<unknown>;
}) {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const close = () => {
    setError(null);
    onClose();
  };
  return (
    <Modal opened={opened} onClose={close} title={title}>
      <Stack>
        <Text size="sm">{children}</Text>
        {error !== null && <ErrorAlert error={error} />}
        <Group justify="flex-end">
          <Button variant="default" onClick={close}>
            Cancel
          </Button>
          <Button
            color={color}
            loading={busy}
            onClick={() => {
              setBusy(true);
              setError(null);
              onConfirm()
                .then(close)
                .catch(setError)
                .finally(() => setBusy(false));
            }}
          >
            {confirm}
          </Button>
        </Group>
      </Stack>
    </Modal>
  );
}
