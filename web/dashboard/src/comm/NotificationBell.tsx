/**
 * The bell in the header: the person's unread notifications, kept live by a
 * `WatchNotifications` stream (gRPC-Web through Envoy; reopened after a pause when it breaks), a
 * toast for each new one, the list with "mark all read", and the person's preferences per kind.
 */
import { useEffect, useRef, useState } from 'react';
import { ActionIcon, Button, Group, Indicator, Modal, Popover, ScrollArea, Stack, Text, UnstyledButton } from '@mantine/core';
import { notifications as toasts } from '@mantine/notifications';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { useNavigate } from 'react-router';
import { NotificationService } from '@sentra/shared/api';
import type { Notification } from '@sentra/shared/gen/sentra/comm/v1/notification_service_pb';
import { ErrorAlert, When, useSentra } from '@sentra/shared/ui';
import { NotificationPreferences } from './NotificationPreferences';

const RECONNECT_MS = 2_000;

/**
 * Where a notification leads: `leads/{id}` -> `/leads/{id}`, `mailboxes/{id}` -> `/mailboxes`,
 * `webhooks/{id}` -> `/admin/webhooks/{id}`, `invoices/{id}` -> `/finance/invoices/{id}`.
 */
function target(n: Notification): string | null {
  if (n.subject.startsWith('leads/')) return `/${n.subject}`;
  if (n.subject.startsWith('mailboxes/')) return '/mailboxes';
  if (n.subject.startsWith('webhooks/')) return `/admin/${n.subject}`;
  if (n.subject.startsWith('invoices/')) return `/finance/${n.subject}`;
  return null;
}

/** Opens the stream while mounted; `onNew` gets each notification, `onOpen` each (re)connect. */
function useLiveNotifications(onNew: (n: Notification) => void, onOpen: () => void) {
  const { clients } = useSentra();
  const handlers = useRef({ onNew, onOpen });
  handlers.current = { onNew, onOpen };
  useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    async function watch() {
      try {
        // What arrived while no stream was open is fetched once the new one is open.
        handlers.current.onOpen();
        for await (const message of clients.notifications.watchNotifications({}, { signal: abort.signal })) {
          if (message.notification) handlers.current.onNew(message.notification);
        }
      } catch {
        // Aborted on purpose, or the connection broke.
      }
      if (!abort.signal.aborted) timer = setTimeout(() => void watch(), RECONNECT_MS);
    }
    void watch();
    return () => {
      abort.abort();
      clearTimeout(timer);
    };
  }, [clients]);
}

export function NotificationBell() {
  const navigate = useNavigate();
  const list = useQuery(NotificationService.method.listNotifications, { pageSize: 15 });
  const mark = useMutation(NotificationService.method.markNotificationsRead);
  const [preferences, setPreferences] = useState(false);
  useLiveNotifications(
    (n) => {
      toasts.show({ title: 'New notification', message: n.title });
      void list.refetch();
    },
    () => void list.refetch(),
  );
  const unread = list.data?.unreadCount ?? 0;
  const open = (n: Notification) => {
    const to = target(n);
    if (!n.readTime) void mark.mutateAsync({ notificationIds: [n.notificationId] }).then(() => list.refetch());
    if (to) navigate(to);
  };
  // The popover's target must be the button itself: it gets aria-haspopup/expanded, which a
  // wrapping element may not carry.
  return (
    <Indicator label={unread} size={16} disabled={unread === 0} offset={4} data-testid="bell-count">
      <Popover width={360} position="bottom-end" shadow="md">
        <Popover.Target>
          <ActionIcon variant="subtle" color="gray" size="lg" aria-label={`Notifications, ${unread} unread`}>
            <svg viewBox="0 0 24 24" width="20" height="20" fill="none" stroke="currentColor" strokeWidth="2" aria-hidden="true">
              <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
              <path d="M13.7 21a2 2 0 0 1-3.4 0" />
            </svg>
          </ActionIcon>
        </Popover.Target>
        <Popover.Dropdown>
          <Group justify="space-between" mb="xs">
            <Text fw={600}>Notifications</Text>
            <Button
              size="compact-xs"
              variant="subtle"
              disabled={unread === 0}
              loading={mark.isPending}
              onClick={() => void mark.mutateAsync({ all: true }).then(() => list.refetch())}
            >
              Mark all read
            </Button>
          </Group>
          {list.error && <ErrorAlert error={list.error} />}
          {mark.error && <ErrorAlert error={mark.error} />}
          <ScrollArea.Autosize mah={360}>
            <Stack gap={4}>
              {(list.data?.notifications ?? []).length === 0 && (
                <Text size="sm" c="dimmed">
                  Nothing yet.
                </Text>
              )}
              {(list.data?.notifications ?? []).map((n) => (
                <UnstyledButton key={n.notificationId} onClick={() => open(n)} data-testid="notification" p={6}>
                  <Text size="sm" fw={n.readTime ? 400 : 700}>
                    {n.title}
                  </Text>
                  <Text size="xs" c="dimmed">
                    <When value={n.createTime} />
                  </Text>
                </UnstyledButton>
              ))}
            </Stack>
          </ScrollArea.Autosize>
          <Group justify="flex-end" mt="xs">
            <Button size="compact-xs" variant="subtle" onClick={() => setPreferences(true)}>
              Preferences
            </Button>
          </Group>
        </Popover.Dropdown>
      </Popover>
      {/* Above the bell's popover (z-index 300), which stays open behind it. */}
      <Modal opened={preferences} onClose={() => setPreferences(false)} title="Notify me when" size="lg" zIndex={400}>
        {preferences && <NotificationPreferences />}
      </Modal>
    </Indicator>
  );
}
