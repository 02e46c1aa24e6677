/** The shared UI kit: Mantine-based pieces both apps use, so they look and behave alike. */
export { Boot } from './Boot';
export { BrandMark } from './BrandMark';
export { FullPage } from './FullPage';
export { RequireSession } from './RequireSession';
export { SignInPage } from './SignIn';
export { Pager, usePaging, type Paging } from './paging';
export { useSentra, useSessionState, usePrincipal, type Sentra } from './context';
export { ConfirmDialog, Day, EmptyState, ErrorAlert, Money, PageHeader, PromptDialog, QueryView, When } from './components';
export { InvoiceDocument, type InvoiceBrand, type InvoiceParty } from './InvoiceDocument';
export { AmountsTable, InvoicesTable, LineItemsTable, ListTable, OrdersTable, invoiceAmounts, type Column, type LineItem } from './tables';
