/**
 * Email automation of one brand: templates (with a live preview), rules, and what was sent.
 * On the neutral host a person with several brands picks the brand here.
 */
import { useState } from 'react';
import { Select, Stack, Tabs } from '@mantine/core';
import { P, can } from '@sentra/shared/permissions';
import { EmptyState, PageHeader, usePrincipal } from '@sentra/shared/ui';
import { useBrands } from '../../data';
import { useScope } from '../../layout/scope';
import { EmailLog, Suppressions } from '../../comm/automation/EmailLog';
import { Rules } from '../../comm/automation/Rules';
import { Templates } from '../../comm/automation/Templates';

export default function Automation() {
  const principal = usePrincipal();
  const scope = useScope();
  const brands = useBrands();
  const readable = brands.brands.filter((b) => !b.archived && can(principal, P.automationRead, b.id));
  const [picked, setPicked] = useState<string | null>(null);
  const brandId = scope.brandId ?? picked ?? readable[0]?.id ?? null;
  const writable = brandId !== null && can(principal, P.automationWrite, brandId);
  return (
    <Stack>
      <PageHeader
        title="Automation"
        actions={
          !scope.fixed &&
          readable.length > 1 && (
            <Select
              aria-label="Brand"
              data={readable.map((b) => ({ value: b.id, label: b.name }))}
              value={brandId}
              onChange={setPicked}
              allowDeselect={false}
            />
          )
        }
      >
        Reminders and follow-ups the brand sends by itself, from its default sender, with an unsubscribe link for clients.
      </PageHeader>
      {brandId === null ? (
        brands.isSuccess && <EmptyState>No brand whose automation you can see.</EmptyState>
      ) : (
        <Tabs defaultValue="templates" keepMounted={false}>
          <Tabs.List>
            <Tabs.Tab value="templates">Templates</Tabs.Tab>
            <Tabs.Tab value="rules">Rules</Tabs.Tab>
            <Tabs.Tab value="sent">Sent</Tabs.Tab>
          </Tabs.List>
          <Tabs.Panel value="templates" pt="md">
            <Templates brandId={brandId} writable={writable} />
          </Tabs.Panel>
          <Tabs.Panel value="rules" pt="md">
            <Rules brandId={brandId} writable={writable} />
          </Tabs.Panel>
          <Tabs.Panel value="sent" pt="md">
            <Stack>
              <EmailLog brandId={brandId} />
              <Suppressions brandId={brandId} writable={writable} />
            </Stack>
          </Tabs.Panel>
        </Tabs>
      )}
    </Stack>
  );
}
