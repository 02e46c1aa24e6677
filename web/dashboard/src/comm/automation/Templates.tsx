/** A brand's email templates: the list, and the editor for a new or an existing one. */
import { useState } from 'react';
import { Anchor, Button, Card, Group, Table, Text } from '@mantine/core';
import { useQuery } from '@connectrpc/connect-query';
import { AutomationService } from '@sentra/shared/api';
import type { EmailTemplate } from '@sentra/shared/gen/sentra/comm/v1/automation_service_pb';
import { ListTable, QueryView, When } from '@sentra/shared/ui';
import { TemplateEditor } from './TemplateEditor';

export function Templates({ brandId, writable }: { brandId: string; writable: boolean }) {
  const query = useQuery(AutomationService.method.listEmailTemplates, { brandId });
  const [editing, setEditing] = useState<EmailTemplate | 'new' | null>(null);
  if (editing !== null) {
    return (
      <Card withBorder>
        <TemplateEditor brandId={brandId} template={editing === 'new' ? null : editing} onDone={() => setEditing(null)} />
      </Card>
    );
  }
  return (
    <Card withBorder padding={0}>
      {writable && (
        <Group justify="flex-end" p="sm">
          <Button onClick={() => setEditing('new')}>New template</Button>
        </Group>
      )}
      <QueryView query={query} isEmpty={(d) => d.templates.length === 0} empty="No template yet.">
        {(data) => (
          <ListTable minWidth={560} testId="templates-table" columns={['Name', 'Subject', 'Changed']}>
            {data.templates.map((t) => (
              <Table.Tr key={t.templateId}>
                <Table.Td>
                  {writable ? (
                    <Anchor component="button" type="button" onClick={() => setEditing(t)}>
                      {t.name}
                    </Anchor>
                  ) : (
                    t.name
                  )}
                </Table.Td>
                <Table.Td>
                  <Text size="sm" ff="monospace">
                    {t.subject}
                  </Text>
                </Table.Td>
                <Table.Td>
                  <When value={t.updateTime} />
                </Table.Td>
              </Table.Tr>
            ))}
          </ListTable>
        )}
      </QueryView>
    </Card>
  );
}
