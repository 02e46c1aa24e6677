/** The printable invoice: the document in the brand's dress, a print button, nothing else on paper. */
import { Button, Group } from '@mantine/core';
import { useQuery } from '@connectrpc/connect-query';
import { Link, useParams } from 'react-router';
import { FinanceService, SalesService, TenancyService } from '@sentra/shared/api';
import { P, can } from '@sentra/shared/permissions';
import { InvoiceDocument, QueryView, usePrincipal } from '@sentra/shared/ui';

export default function InvoicePrint() {
  const { invoiceId = '' } = useParams();
  const principal = usePrincipal();
  const query = useQuery(FinanceService.method.getInvoice, { invoiceId });
  const invoice = query.data?.invoice;
  const brand = useQuery(TenancyService.method.getBrand, { brandId: invoice?.brandId ?? '' }, { enabled: !!invoice });
  const client = useQuery(
    SalesService.method.getClient,
    { clientId: invoice?.clientId ?? '' },
    { enabled: !!invoice && can(principal, P.clientRead, invoice.brandId) },
  );
  return (
    <QueryView query={query}>
      {({ invoice }) =>
        invoice && (
          <>
            <Group justify="space-between" mb="md" className="no-print">
              <Button component={Link} to={`/finance/invoices/${invoice.id}`} variant="default">
                Back
              </Button>
              <Button onClick={() => window.print()}>Print</Button>
            </Group>
            <InvoiceDocument
              invoice={invoice}
              brand={brand.data?.brand ?? null}
              client={
                client.data?.client
                  ? { name: client.data.client.contactName, company: client.data.client.company, email: client.data.client.email }
                  : null
              }
            />
          </>
        )
      }
    </QueryView>
  );
}
