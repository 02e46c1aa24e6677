/** Pieces of the webhook pages: an endpoint's state, the secret shown once, the events filter. */
import { Alert, Badge, Button, CopyButton, Group, Stack, Text, TextInput } from '@mantine/core';
import type { WebhookEndpoint } from '@sentra/shared/gen/sentra/comm/v1/webhook_service_pb';
import { When } from '@sentra/shared/ui';

/** `sales.lead.*, finance.invoice.overdue` -> a list; blank -> every event. */
export function parseEventTypes(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

export function EndpointState({ endpoint }: { endpoint: WebhookEndpoint }) {
  if (!endpoint.enabled) {
    return (
      <Stack gap={2}>
        <Badge color="gray">Disabled</Badge>
        {endpoint.disabledReason && (
          <Text size="xs" c="red">
            {endpoint.disabledReason}
          </Text>
        )}
      </Stack>
    );
  }
  if (endpoint.failingSinceTime) {
    return (
      <Stack gap={2}>
        <Badge color="orange">Failing</Badge>
        <Text size="xs" c="dimmed">
          since <When value={endpoint.failingSinceTime} />
        </Text>
      </Stack>
    );
  }
  return <Badge color="green">Enabled</Badge>;
}

/** The secret, once, with a way to copy it. */
export function SecretOnce({ secret, onDone }: { secret: string; onDone: () => void }) {
  return (
    <Stack>
      <Alert color="yellow" title="Copy the signing secret now">
        Your receiver verifies every request with it (Standard Webhooks). It is not shown again.
      </Alert>
      <TextInput readOnly value={secret} aria-label="Signing secret" data-testid="webhook-secret" ff="monospace" />
      <Group justify="flex-end">
        <CopyButton value={secret}>{({ copied, copy }) => <Button onClick={copy}>{copied ? 'Copied' : 'Copy secret'}</Button>}</CopyButton>
        <Button variant="default" onClick={onDone}>
          Done
        </Button>
      </Group>
    </Stack>
  );
}
