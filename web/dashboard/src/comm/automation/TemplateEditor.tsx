/**
 * Writing a template with a live preview: every pause in typing renders the draft on the server
 * (PreviewEmailTemplate, sample data and the brand's own name), and a mistake is shown with its
 * part and line before anything is saved.
 */
import { useEffect, useState } from 'react';
import { Box, Button, Card, Grid, Group, Stack, Text, TextInput, Textarea, Title } from '@mantine/core';
import { useMutation } from '@connectrpc/connect-query';
import { AutomationService } from '@sentra/shared/api';
import type { EmailTemplate } from '@sentra/shared/gen/sentra/comm/v1/automation_service_pb';
import { fieldError, toProblem, type Problem } from '@sentra/shared/errors';
import { ErrorAlert } from '@sentra/shared/ui';
import { useInvalidate } from '../../data';

export interface Draft {
  name: string;
  subject: string;
  htmlBody: string;
  textBody: string;
}

export const NEW_DRAFT: Draft = {
  name: 'Payment reminder',
  subject: 'Invoice {{ invoice.number }} is overdue',
  htmlBody: '<p>Dear {{ client.name }},</p>\n<p>{{ invoice.balance }} was due on {{ invoice.due_date }}.</p>\n<p>{{ sender.name }}</p>',
  textBody: 'Dear {{ client.name }},\n\n{{ invoice.balance }} was due on {{ invoice.due_date }}.\n\n{{ sender.name }}',
};

/** The rendered draft, refreshed 400 ms after the last keystroke. */
function usePreview(brandId: string, draft: Draft) {
  const preview = useMutation(AutomationService.method.previewEmailTemplate);
  const { mutate } = preview;
  useEffect(() => {
    const timer = window.setTimeout(
      () => mutate({ brandId, template: { subject: draft.subject, htmlBody: draft.htmlBody, textBody: draft.textBody } }),
      400,
    );
    return () => window.clearTimeout(timer);
  }, [brandId, draft.subject, draft.htmlBody, draft.textBody, mutate]);
  return preview;
}

function Preview({ brandId, draft }: { brandId: string; draft: Draft }) {
  const preview = usePreview(brandId, draft);
  return (
    <Card withBorder h="100%" data-testid="template-preview">
      <Stack gap="xs">
        <Text size="xs" c="dimmed">
          Preview with sample data
        </Text>
        {preview.error ? (
          <ErrorAlert error={preview.error} title="The template does not render" />
        ) : (
          <>
            <Text fw={600}>{preview.data?.subject ?? ''}</Text>
            {/* A sandboxed frame: the template's markup renders as a mail client would, with no script. */}
            <Box
              component="iframe"
              title="Email preview"
              sandbox=""
              srcDoc={preview.data?.htmlBody ?? ''}
              style={{ border: '1px solid var(--mantine-color-gray-3)', width: '100%', minHeight: 260, background: 'white' }}
            />
          </>
        )}
      </Stack>
    </Card>
  );
}

export function TemplateEditor({ brandId, template, onDone }: { brandId: string; template: EmailTemplate | null; onDone: () => void }) {
  const invalidate = useInvalidate();
  const [draft, setDraft] = useState<Draft>(template ?? NEW_DRAFT);
  const [requestId] = useState(() => crypto.randomUUID());
  const [problem, setProblem] = useState<Problem | null>(null);
  const create = useMutation(AutomationService.method.createEmailTemplate);
  const update = useMutation(AutomationService.method.updateEmailTemplate);
  const save = () => {
    setProblem(null);
    const call = template
      ? update.mutateAsync({
          brandId,
          template: { ...template, ...draft },
          updateMask: { paths: ['name', 'subject', 'html_body', 'text_body'] },
        })
      : create.mutateAsync({ brandId, template: draft, requestId });
    call
      .then(() => invalidate(AutomationService))
      .then(onDone)
      .catch((error: unknown) => setProblem(toProblem(error)));
  };
  const field = (key: keyof Draft) => ({
    value: draft[key],
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement>) => setDraft({ ...draft, [key]: e.currentTarget.value }),
  });
  return (
    <Stack>
      <Title order={4}>{template ? `Edit “${template.name}”` : 'New template'}</Title>
      <Grid>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <Stack gap="sm">
            <TextInput label="Name" required {...field('name')} error={fieldError(problem, 'name')} />
            <TextInput label="Subject" required {...field('subject')} error={fieldError(problem, 'subject')} />
            <Textarea label="HTML" autosize minRows={5} ff="monospace" {...field('htmlBody')} error={fieldError(problem, 'html_body')} />
            <Textarea label="Text" autosize minRows={4} ff="monospace" {...field('textBody')} error={fieldError(problem, 'text_body')} />
            <Text size="xs" c="dimmed">
              Data: brand, sender, recipient, client, lead, order and invoice fields, e.g. {'{{ invoice.number }}'}, {'{{ invoice.balance }}'}, {'{{ lead.contact_name }}'}.
            </Text>
          </Stack>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <Preview brandId={brandId} draft={draft} />
        </Grid.Col>
      </Grid>
      {problem && Object.keys(problem.fields).length === 0 && <ErrorAlert error={problem} />}
      <Group justify="flex-end">
        <Button variant="default" onClick={onDone}>
          Cancel
        </Button>
        <Button onClick={save} loading={create.isPending || update.isPending}>
          Save template
        </Button>
      </Group>
    </Stack>
  );
}
