/**
 * Where Google's consent page sends the browser back: completes the connection with the `code`
 * and `state` it brought, then shows the mailboxes. A refusal at Google (`error=access_denied`)
 * or here is shown, with a way to try again.
 */
import { useEffect, useRef } from 'react';
import { Alert, Button, Center, Group, Loader, Stack, Text } from '@mantine/core';
import { useMutation } from '@connectrpc/connect-query';
import { notifications } from '@mantine/notifications';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { CommService } from '@sentra/shared/api';
import { ErrorAlert, PageHeader } from '@sentra/shared/ui';

export default function MailboxCallback() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const complete = useMutation(CommService.method.completeMailboxConnection);
  const started = useRef(false);
  const code = params.get('code') ?? '';
  const state = params.get('state') ?? '';
  const refused = params.get('error');
  useEffect(() => {
    // Once: a code is single use, and React may run effects twice in development.
    if (started.current || refused || !code) return;
    started.current = true;
    complete
      .mutateAsync({ code, state })
      .then(({ mailbox }) => {
        notifications.show({ color: 'green', message: `${mailbox?.emailAddress ?? 'Your mailbox'} is connected; syncing now.` });
        navigate('/mailboxes', { replace: true });
      })
      .catch(() => undefined);
  }, [code, state, refused, complete, navigate]);
  return (
    <Stack>
      <PageHeader title="Connecting your mailbox" />
      {refused && (
        <Alert color="red" role="alert" title="Not connected">
          Gmail did not grant access ({refused}).
        </Alert>
      )}
      {!refused && !code && (
        <Alert color="yellow" role="alert" title="Nothing to complete">
          Gmail opens this page after you grant access; start from Mailboxes.
        </Alert>
      )}
      {complete.error && <ErrorAlert error={complete.error} title="The connection did not complete" />}
      {complete.isPending && (
        <Center py="xl" aria-busy="true">
          <Group gap="sm">
            <Loader size="sm" />
            <Text c="dimmed">Completing the connection…</Text>
          </Group>
        </Center>
      )}
      {(refused || complete.error || !code) && (
        <Group>
          <Button component={Link} to="/mailboxes" variant="default">
            Back to mailboxes
          </Button>
        </Group>
      )}
    </Stack>
  );
}
