/**
 * The portal's frame: the brand's name and colours, the client's name, sign out. People who do not
 * belong here (staff, or a client of another brand) get a page that says so.
 */
import { Anchor, AppShell, Button, Container, Group, Text } from '@mantine/core';
import { Outlet } from 'react-router';
import { BrandMark, FullPage, usePrincipal, useSentra } from '@sentra/shared/ui';

export function Layout() {
  const { brand, session } = useSentra();
  const principal = usePrincipal();
  const signOut = <Button onClick={() => void session.signOut()}>Sign out</Button>;
  if (principal.kind === 'staff') {
    return (
      <FullPage title="This is the client portal" testId="refused" actions={<Group>{signOut}<Button component="a" href="/app/" variant="default">Open the dashboard</Button></Group>}>
        You are signed in with a staff account. Staff work in the dashboard.
      </FullPage>
    );
  }
  if (!brand || principal.portalBrandId !== brand.brandId) {
    return (
      <FullPage title="This portal belongs to another brand" testId="refused" actions={signOut}>
        Your login is for another portal. Open the address your agency gave you.
      </FullPage>
    );
  }
  return (
    <AppShell header={{ height: 60 }} padding="md">
      <AppShell.Header className="no-print" style={{ borderTop: '4px solid var(--mantine-primary-color-filled)' }}>
        <Container size="lg" h="100%">
          <Group h="100%" justify="space-between" wrap="nowrap">
            <BrandMark suffix="Client portal" />
            <Group gap="sm" wrap="nowrap">
              {brand.supportEmail && (
                <Text size="sm" visibleFrom="sm">
                  Help: <Anchor href={`mailto:${brand.supportEmail}`}>{brand.supportEmail}</Anchor>
                </Text>
              )}
              <Button variant="default" size="xs" onClick={() => void session.signOut()}>
                Sign out
              </Button>
            </Group>
          </Group>
        </Container>
      </AppShell.Header>
      <AppShell.Main>
        <Container size="lg" px={0}>
          <Outlet />
        </Container>
      </AppShell.Main>
    </AppShell>
  );
}
