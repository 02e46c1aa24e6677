/**
 * The frame of every signed-in page: header (brand, brand picker, the person's menu), the
 * navigation (only sections the person's roles open), and the page. It also refuses, with a
 * page that says why, people who do not belong on this host.
 */
import { AppShell, Burger, Button, Group, Menu, NavLink, ScrollArea, Select, Text, UnstyledButton } from '@mantine/core';
import { useDisclosure } from '@mantine/hooks';
import { useQuery } from '@connectrpc/connect-query';
import { NavLink as RouterLink, Outlet, useLocation } from 'react-router';
import { BrandMark, FullPage, usePrincipal, useSentra } from '@sentra/shared/ui';
import { TenancyService } from '@sentra/shared/api';
import { P, can, canSomewhere } from '@sentra/shared/permissions';
import { ScopeProvider, useScope } from './scope';
import { useBrands } from '../data';
import { NotificationBell } from '../comm/NotificationBell';

interface Section {
  to: string;
  label: string;
  visible: boolean;
}

function useSections(): { title: string; items: Section[] }[] {
  const p = usePrincipal();
  return [
    {
      title: 'Sales',
      items: [
        { to: '/', label: 'Home', visible: canSomewhere(p, P.pipelineRead) },
        { to: '/pipeline', label: 'Pipeline', visible: canSomewhere(p, P.leadRead) },
        { to: '/clients', label: 'Clients', visible: canSomewhere(p, P.clientRead) },
        { to: '/orders', label: 'Orders', visible: canSomewhere(p, P.orderRead) },
      ],
    },
    {
      title: 'Mail',
      items: [
        { to: '/mailboxes', label: 'Mailboxes', visible: can(p, P.mailboxRead) },
        { to: '/automation', label: 'Automation', visible: canSomewhere(p, P.automationRead) },
      ],
    },
    {
      title: 'Finance',
      items: [
        { to: '/finance/invoices', label: 'Invoices', visible: canSomewhere(p, P.invoiceRead) },
        { to: '/finance/receivables', label: 'Receivables', visible: canSomewhere(p, P.receivablesRead) },
      ],
    },
    {
      title: 'Admin',
      items: [
        {
          to: '/admin/brands',
          label: 'Brands',
          visible: can(p, P.brandCreate) || canSomewhere(p, P.brandWrite) || canSomewhere(p, P.brandAccessWrite),
        },
        { to: '/admin/users', label: 'Users', visible: can(p, P.userWrite) },
        { to: '/admin/webhooks', label: 'Webhooks', visible: can(p, P.webhookRead) },
      ],
    },
  ];
}

function BrandPicker() {
  const scope = useScope();
  const { brands } = useBrands();
  const live = brands.filter((b) => !b.archived);
  if (scope.fixed || live.length < 2) return null;
  return (
    <Select
      aria-label="Brand"
      size="xs"
      w={200}
      visibleFrom="sm"
      data-testid="brand-picker"
      value={scope.brandId ?? 'all'}
      data={[{ value: 'all', label: 'All brands' }, ...live.map((b) => ({ value: b.id, label: b.name }))]}
      onChange={(value) => scope.setBrandId(!value || value === 'all' ? null : value)}
      allowDeselect={false}
    />
  );
}

function UserMenu() {
  const { session } = useSentra();
  const principal = usePrincipal();
  const me = useQuery(TenancyService.method.getUser, { userId: principal.userId }, { staleTime: 300_000 });
  const name = me.data?.user?.displayName ?? 'Account';
  return (
    <Menu position="bottom-end" withinPortal>
      <Menu.Target>
        <UnstyledButton data-testid="user-menu" title="Account">
          <Text size="sm" fw={500} truncate maw={180}>
            {name}
          </Text>
        </UnstyledButton>
      </Menu.Target>
      <Menu.Dropdown>
        {me.data?.user && <Menu.Label>{me.data.user.email}</Menu.Label>}
        <Menu.Item onClick={() => void session.signOut()}>Sign out</Menu.Item>
      </Menu.Dropdown>
    </Menu>
  );
}

/** People signed in here who do not belong on this host get a page saying so. */
function useRefusal(): { title: string; text: string } | null {
  const { brand } = useSentra();
  const principal = usePrincipal();
  if (principal.kind === 'client') {
    return {
      title: 'This is the staff dashboard',
      text: 'You are signed in with a client portal account. Your orders and invoices are in the client portal.',
    };
  }
  if (brand && principal.organizationId !== brand.organizationId) {
    return {
      title: `This is ${brand.displayName}'s workspace`,
      text: 'Your account belongs to another organization, so you cannot work here. Sign out, or open your own workspace.',
    };
  }
  return null;
}

export function Shell() {
  const { session } = useSentra();
  const principal = usePrincipal();
  const refusal = useRefusal();
  const sections = useSections();
  const [opened, { toggle, close }] = useDisclosure();
  const location = useLocation();

  if (refusal) {
    return (
      <FullPage
        title={refusal.title}
        testId="refused"
        actions={
          <Group>
            <Button onClick={() => void session.signOut()}>Sign out</Button>
            <Button component="a" href="/" variant="default">
              Client portal
            </Button>
          </Group>
        }
      >
        {refusal.text}
      </FullPage>
    );
  }

  return (
    <ScopeProvider>
      <AppShell
        header={{ height: 56 }}
        navbar={{ width: 220, breakpoint: 'sm', collapsed: { mobile: !opened } }}
        padding="md"
      >
        <AppShell.Header>
          <Group h="100%" px="md" justify="space-between" wrap="nowrap">
            <Group gap="sm" wrap="nowrap">
              <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label="Navigation" />
              <BrandMark />
            </Group>
            <Group gap="md" wrap="nowrap">
              <BrandPicker />
              {can(principal, P.notificationRead) && <NotificationBell />}
              <UserMenu />
            </Group>
          </Group>
        </AppShell.Header>
        <AppShell.Navbar p="xs" aria-label="Main">
          <ScrollArea>
            {sections.map((section) => {
              const items = section.items.filter((i) => i.visible);
              if (items.length === 0) return null;
              return (
                <div key={section.title}>
                  <Text size="xs" c="dimmed" fw={700} tt="uppercase" px="sm" pt="md" pb={4}>
                    {section.title}
                  </Text>
                  {items.map((item) => (
                    <NavLink
                      key={item.to}
                      component={RouterLink}
                      to={item.to}
                      end={item.to === '/'}
                      label={item.label}
                      active={item.to === '/' ? location.pathname === '/' : location.pathname.startsWith(item.to)}
                      onClick={close}
                    />
                  ))}
                </div>
              );
            })}
          </ScrollArea>
        </AppShell.Navbar>
        <AppShell.Main>
          <Outlet />
        </AppShell.Main>
      </AppShell>
    </ScopeProvider>
  );
}
