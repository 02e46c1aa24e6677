/**
 * The dashboard's pages, under `/app/`. Pages load lazily, so the first screen downloads only what
 * it shows (and the charts only where there are charts).
 */
import { lazy, Suspense, type ComponentType, type ReactNode } from 'react';
import { createBrowserRouter, Navigate } from 'react-router';
import { Center, Loader } from '@mantine/core';
import { RequireSession, SignInPage } from '@sentra/shared/ui';
import { Shell } from './layout/Shell';

function page(load: () => Promise<{ default: ComponentType }>): ReactNode {
  const Page = lazy(load);
  return (
    <Suspense
      fallback={
        <Center py="xl" aria-busy="true">
          <Loader size="sm" />
        </Center>
      }
    >
      <Page />
    </Suspense>
  );
}

export const router = createBrowserRouter(
  [
    { path: '/sign-in', element: <SignInPage heading="Sign in to your workspace" /> },
    { path: '/accept-invite', element: page(() => import('./pages/AcceptInvite')) },
    {
      path: '/',
      element: (
        <RequireSession>
          <Shell />
        </RequireSession>
      ),
      children: [
        { index: true, element: page(() => import('./pages/Home')) },
        { path: 'pipeline', element: page(() => import('./pages/Board')) },
        { path: 'leads/:leadId', element: page(() => import('./pages/LeadPage')) },
        { path: 'clients', element: page(() => import('./pages/Clients')) },
        { path: 'clients/:clientId', element: page(() => import('./pages/ClientPage')) },
        { path: 'orders', element: page(() => import('./pages/Orders')) },
        { path: 'orders/:orderId', element: page(() => import('./pages/OrderPage')) },
        { path: 'mailboxes', element: page(() => import('./pages/mail/Mailboxes')) },
        { path: 'automation', element: page(() => import('./pages/automation/Automation')) },
        { path: 'mailboxes/callback', element: page(() => import('./pages/mail/MailboxCallback')) },
        { path: 'finance', element: <Navigate to="/finance/invoices" replace /> },
        { path: 'finance/invoices', element: page(() => import('./pages/finance/Invoices')) },
        { path: 'finance/invoices/:invoiceId', element: page(() => import('./pages/finance/InvoicePage')) },
        { path: 'finance/invoices/:invoiceId/print', element: page(() => import('./pages/finance/InvoicePrint')) },
        { path: 'finance/receivables', element: page(() => import('./pages/finance/Receivables')) },
        { path: 'admin/brands', element: page(() => import('./pages/admin/Brands')) },
        { path: 'admin/brands/:brandId', element: page(() => import('./pages/admin/BrandPage')) },
        { path: 'admin/users', element: page(() => import('./pages/admin/Users')) },
        { path: 'admin/users/:userId', element: page(() => import('./pages/admin/UserPage')) },
        { path: 'admin/webhooks', element: page(() => import('./pages/admin/Webhooks')) },
        { path: 'admin/webhooks/:endpointId', element: page(() => import('./pages/admin/WebhookPage')) },
        { path: '*', element: page(() => import('./pages/NotFound')) },
      ],
    },
  ],
  { basename: '/app' },
);
