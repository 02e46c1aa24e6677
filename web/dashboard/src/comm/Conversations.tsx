/**
 * The email conversations with a lead or a client (Comm threads linked by the contact's
 * address), newest first, each opening to its messages, with a reply sent from one of the
 * brand's sender addresses.
 */
import { useState } from 'react';
import { Accordion, Anchor, Badge, Button, Card, Group, Select, Stack, Text, Textarea, Title } from '@mantine/core';
import { useMutation, useQuery } from '@connectrpc/connect-query';
import { Link } from 'react-router';
import { CommService } from '@sentra/shared/api';
import { AliasStatus, type Message, type Thread } from '@sentra/shared/gen/sentra/comm/v1/resources_pb';
import { P, can } from '@sentra/shared/permissions';
import { ErrorAlert, QueryView, When, usePrincipal } from '@sentra/shared/ui';

function Reply({ brandId, messages, onSent }: { brandId: string; messages: Message[]; onSent: () => void }) {
  const aliases = useQuery(CommService.method.listEmailAliases, { brandId });
  const send = useMutation(CommService.method.sendEmail);
  const usable = (aliases.data?.aliases ?? []).filter((a) => a.status === AliasStatus.VERIFIED);
  // Answer the contact's last message, not our own last reply.
  const ours = new Set((aliases.data?.aliases ?? []).map((a) => a.emailAddress));
  const parent = [...messages].reverse().find((m) => !ours.has(m.from?.email ?? '')) ?? messages[messages.length - 1]!;
  const [aliasId, setAliasId] = useState<string | null>(null);
  const [text, setText] = useState('');
  // One id per message being written: a retry after a network error sends it once.
  const [requestId, setRequestId] = useState(() => crypto.randomUUID());
  const chosen = aliasId ?? usable.find((a) => a.isDefault)?.aliasId ?? usable[0]?.aliasId ?? null;
  if (aliases.isSuccess && usable.length === 0) {
    return (
      <Text size="sm" c="dimmed">
        No verified sender address for this brand yet: add one under <Anchor component={Link} to="/mailboxes">Mailboxes</Anchor>.
      </Text>
    );
  }
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        send
          .mutateAsync({ brandId, aliasId: chosen ?? '', textBody: text, replyToMessageId: parent.messageId, requestId })
          .then(() => {
            setText('');
            setRequestId(crypto.randomUUID());
            onSent();
          })
          .catch(() => undefined);
      }}
    >
      <Stack gap="xs">
        <Select
          label="From"
          data={usable.map((a) => ({ value: a.aliasId, label: `${a.displayName} <${a.emailAddress}>` }))}
          value={chosen}
          onChange={setAliasId}
        />
        <Textarea label={`Reply to ${parent.from?.name || parent.from?.email}`} autosize minRows={3} value={text} onChange={(e) => setText(e.currentTarget.value)} />
        {send.error && <ErrorAlert error={send.error} />}
        <Group justify="flex-end">
          <Button type="submit" size="xs" loading={send.isPending} disabled={!text.trim() || !chosen}>
            Send reply
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

function Messages({ thread, brandId, onSent }: { thread: Thread; brandId: string; onSent: () => void }) {
  const principal = usePrincipal();
  const query = useQuery(CommService.method.getThread, { threadId: thread.threadId });
  return (
    <QueryView query={query}>
      {(data) => (
        <Stack gap="md">
          {data.messages.map((m) => (
            <div key={m.messageId} data-testid="thread-message">
              <Group gap="xs" justify="space-between">
                <Text size="sm" fw={600}>
                  {m.from?.name || m.from?.email}{' '}
                  <Text span size="xs" c="dimmed">
                    &lt;{m.from?.email}&gt; to {m.to.map((t) => t.email).join(', ')}
                  </Text>
                </Text>
                <Text size="xs" c="dimmed">
                  <When value={m.sentTime} />
                </Text>
              </Group>
              {m.parseError && (
                <Badge color="yellow" variant="light" size="xs">
                  Could not be fully read
                </Badge>
              )}
              <Text size="sm" style={{ whiteSpace: 'pre-wrap' }} mt={4}>
                {m.textBody.trim() || '(no text)'}
              </Text>
              {m.attachments.length > 0 && (
                <Text size="xs" c="dimmed">
                  Attachments: {m.attachments.map((a) => a.fileName).join(', ')}
                </Text>
              )}
            </div>
          ))}
          {can(principal, P.emailSend, brandId) && data.messages.length > 0 && (
            <Reply
              brandId={brandId}
              messages={data.messages}
              onSent={() => {
                void query.refetch();
                onSent();
              }}
            />
          )}
        </Stack>
      )}
    </QueryView>
  );
}

/** Conversations with the lead `leadId` or the client `clientId` of `brandId`. */
export function Conversations({ leadId = '', clientId = '', brandId }: { leadId?: string; clientId?: string; brandId: string }) {
  const principal = usePrincipal();
  const allowed = can(principal, P.threadRead, brandId);
  const query = useQuery(CommService.method.listThreads, { leadId, clientId, pageSize: 20 }, { enabled: allowed, refetchInterval: 10_000 });
  if (!allowed) return null;
  return (
    <Card withBorder>
      <Title order={4} mb="sm">
        Conversations
      </Title>
      <QueryView
        query={query}
        isEmpty={(d) => d.threads.length === 0}
        empty="No emails with this contact yet. Connected mailboxes show them here."
      >
        {(data) => (
          <Accordion variant="separated" chevronPosition="left">
            {data.threads.map((t) => (
              <Accordion.Item key={t.threadId} value={t.threadId} data-testid="thread">
                <Accordion.Control>
                  <Group justify="space-between" wrap="nowrap">
                    <div>
                      <Text size="sm" fw={600}>
                        {t.subject || '(no subject)'}
                      </Text>
                      <Text size="xs" c="dimmed" lineClamp={1}>
                        {t.snippet}
                      </Text>
                    </div>
                    <Stack gap={2} align="flex-end">
                      <Badge variant="light" data-testid="thread-count">
                        {t.messageCount} {t.messageCount === 1 ? 'message' : 'messages'}
                      </Badge>
                      <Text size="xs" c="dimmed">
                        <When value={t.lastMessageTime} />
                      </Text>
                    </Stack>
                  </Group>
                </Accordion.Control>
                <Accordion.Panel>
                  <Messages thread={t} brandId={brandId} onSent={() => void query.refetch()} />
                </Accordion.Panel>
              </Accordion.Item>
            ))}
          </Accordion>
        )}
      </QueryView>
    </Card>
  );
}
