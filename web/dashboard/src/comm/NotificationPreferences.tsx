/** Which notifications a person wants: per kind, in the app (the bell), also by email, or not at all. */
import { Group, SegmentedControl, Stack, Text } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { NotificationService } from '@sentra/shared/api';
import { NotificationChannel, NotificationKind } from '@sentra/shared/gen/sentra/comm/v1/notification_service_pb';
import { ErrorAlert, QueryView } from '@sentra/shared/ui';

const KIND_LABEL: Record<NotificationKind, string> = {
  [NotificationKind.UNSPECIFIED]: '—',
  [NotificationKind.LEAD_ASSIGNED]: 'A lead is assigned to me',
  [NotificationKind.LEAD_STAGE_CHANGED]: 'My lead changes stage',
  [NotificationKind.MAILBOX_NEEDS_REAUTH]: 'My mailbox needs reconnecting',
  [NotificationKind.WEBHOOK_DISABLED]: 'A webhook I added was disabled',
  [NotificationKind.INVOICE_OVERDUE]: 'An invoice of my brands is overdue (finance)',
  [NotificationKind.REPLY_RECEIVED]: 'A lead assigned to me writes',
};

export function NotificationPreferences() {
  const query = useQuery(NotificationService.method.getNotificationPreferences, {});
  const update = useMutation(NotificationService.method.updateNotificationPreferences);
  return (
    <Stack gap="sm">
      <QueryView query={query}>
        {(data) => (
          <Stack gap="xs">
            {data.preferences.map((p) => (
              <Group key={p.kind} justify="space-between" wrap="nowrap" data-testid="preference">
                <Text size="sm">{KIND_LABEL[p.kind]}</Text>
                <SegmentedControl
                  size="xs"
                  aria-label={KIND_LABEL[p.kind]}
                  value={String(p.channel === NotificationChannel.UNSPECIFIED ? NotificationChannel.IN_APP : p.channel)}
                  onChange={(value) =>
                    update
                      .mutateAsync({ preferences: [{ kind: p.kind, channel: Number(value) as NotificationChannel }] })
                      .then(() => query.refetch())
                      .catch(() => undefined)
                  }
                  data={[
                    { value: String(NotificationChannel.IN_APP), label: 'In the app' },
                    { value: String(NotificationChannel.EMAIL), label: 'Also by email' },
                    { value: String(NotificationChannel.OFF), label: 'Off' },
                  ]}
                />
              </Group>
            ))}
          </Stack>
        )}
      </QueryView>
      {update.error && <ErrorAlert error={update.error} />}
    </Stack>
  );
}
