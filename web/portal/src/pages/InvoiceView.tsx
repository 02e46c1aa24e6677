/** One of the client's invoices as a printable document in the brand's dress. */
import { Anchor, Button, Group } from '@mantine/core';
import { useQuery } from '@connectrpc/connect-query';
import { Link, useParams } from 'react-router';
import { FinanceService } from '@sentra/shared/api';
import { InvoiceDocument, QueryView, useSentra } from '@sentra/shared/ui';

export function InvoiceView() {
  const { invoiceId = '' } = useParams();
  const { brand } = useSentra();
  const query = useQuery(FinanceService.method.getInvoice, { invoiceId });
  return (
    <QueryView query={query}>
      {({ invoice }) =>
        invoice && (
          <>
            <Group justify="space-between" mb="md" className="no-print">
              <Anchor component={Link} to="/">
                ← Your account
              </Anchor>
              <Button onClick={() => window.print()}>Print</Button>
            </Group>
            <InvoiceDocument invoice={invoice} brand={brand} client={null} />
          </>
        )
      }
    </QueryView>
  );
}
