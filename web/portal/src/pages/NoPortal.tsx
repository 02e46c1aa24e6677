/** The neutral host (or an unknown domain): there is no client portal here. */
import { Button, Group } from '@mantine/core';
import { FullPage } from '@sentra/shared/ui';

export function NoPortal() {
  return (
    <FullPage
      title="There is no client portal at this address"
      testId="no-portal"
      actions={
        <Group>
          <Button component="a" href="/app/">
            Staff sign-in
          </Button>
        </Group>
      }
    >
      Client portals live on your agency's own address (for example app.youragency.com). Check the link your
      agency sent you. Agency staff sign in to the dashboard.
    </FullPage>
  );
}
