/**
 * The portal's pages, at the root of a brand's domain. On a host that names no brand there is no
 * portal: every path says so and points staff to the dashboard.
 */
import { createBrowserRouter, type RouteObject } from 'react-router';
import { RequireSession, SignInPage, useSentra } from '@sentra/shared/ui';
import { Layout } from './Layout';
import { Home } from './pages/Home';
import { OrderView } from './pages/OrderView';
import { InvoiceView } from './pages/InvoiceView';
import { NoPortal } from './pages/NoPortal';

function BrandOnly({ children }: { children: React.ReactNode }) {
  const { brand } = useSentra();
  return brand ? <>{children}</> : <NoPortal />;
}

const routes: RouteObject[] = [
  {
    path: '/sign-in',
    element: (
      <BrandOnly>
        <SignInPage heading="Sign in to your client portal" note="Your agency gave you your login." />
      </BrandOnly>
    ),
  },
  {
    path: '/',
    element: (
      <BrandOnly>
        <RequireSession>
          <Layout />
        </RequireSession>
      </BrandOnly>
    ),
    children: [
      { index: true, element: <Home /> },
      { path: 'orders/:orderId', element: <OrderView /> },
      { path: 'invoices/:invoiceId', element: <InvoiceView /> },
      { path: '*', element: <Home /> },
    ],
  },
];

export const router = createBrowserRouter(routes);
