/** Words and colours for the contracts' enums, one place for both apps. */
import { SyncStage } from './gen/sentra/comm/v1/resources_pb';
import { LeadStage, OrderState } from './gen/sentra/sales/v1/resources_pb';
import { InvoiceStatus, PaymentMethod } from './gen/sentra/finance/v1/resources_pb';
import { BrandRole, OrgRole, UserState } from './gen/sentra/tenancy/v1/resources_pb';

export const STAGE_LABEL: Record<LeadStage, string> = {
  [LeadStage.UNSPECIFIED]: 'Unknown',
  [LeadStage.NEW]: 'New',
  [LeadStage.CONTACTED]: 'Contacted',
  [LeadStage.QUALIFIED]: 'Qualified',
  [LeadStage.PROPOSAL]: 'Proposal',
  [LeadStage.NEGOTIATION]: 'Negotiation',
  [LeadStage.WON]: 'Won',
  [LeadStage.LOST]: 'Lost',
};

export const STAGE_COLOR: Record<LeadStage, string> = {
  [LeadStage.UNSPECIFIED]: 'gray',
  [LeadStage.NEW]: 'blue',
  [LeadStage.CONTACTED]: 'cyan',
  [LeadStage.QUALIFIED]: 'teal',
  [LeadStage.PROPOSAL]: 'violet',
  [LeadStage.NEGOTIATION]: 'orange',
  [LeadStage.WON]: 'green',
  [LeadStage.LOST]: 'red',
};

/** The open stages, in pipeline order. */
export const OPEN_STAGES = [
  LeadStage.NEW,
  LeadStage.CONTACTED,
  LeadStage.QUALIFIED,
  LeadStage.PROPOSAL,
  LeadStage.NEGOTIATION,
] as const;

export const ORDER_STATE_LABEL: Record<OrderState, string> = {
  [OrderState.UNSPECIFIED]: 'Unknown',
  [OrderState.DRAFT]: 'Draft',
  [OrderState.CONFIRMED]: 'Confirmed',
  [OrderState.FULFILLED]: 'Fulfilled',
  [OrderState.CANCELLED]: 'Cancelled',
};

export const ORDER_STATE_COLOR: Record<OrderState, string> = {
  [OrderState.UNSPECIFIED]: 'gray',
  [OrderState.DRAFT]: 'gray',
  [OrderState.CONFIRMED]: 'blue',
  [OrderState.FULFILLED]: 'green',
  [OrderState.CANCELLED]: 'red',
};

export const INVOICE_STATUS_LABEL: Record<InvoiceStatus, string> = {
  [InvoiceStatus.UNSPECIFIED]: 'Unknown',
  [InvoiceStatus.DRAFT]: 'Draft',
  [InvoiceStatus.ISSUED]: 'Issued',
  [InvoiceStatus.PARTIALLY_PAID]: 'Partially paid',
  [InvoiceStatus.PAID]: 'Paid',
  [InvoiceStatus.OVERDUE]: 'Overdue',
  [InvoiceStatus.VOID]: 'Void',
};

export const INVOICE_STATUS_COLOR: Record<InvoiceStatus, string> = {
  [InvoiceStatus.UNSPECIFIED]: 'gray',
  [InvoiceStatus.DRAFT]: 'gray',
  [InvoiceStatus.ISSUED]: 'blue',
  [InvoiceStatus.PARTIALLY_PAID]: 'yellow',
  [InvoiceStatus.PAID]: 'green',
  [InvoiceStatus.OVERDUE]: 'red',
  [InvoiceStatus.VOID]: 'dark',
};

export const PAYMENT_METHOD_LABEL: Record<PaymentMethod, string> = {
  [PaymentMethod.UNSPECIFIED]: 'Unknown',
  [PaymentMethod.BANK_TRANSFER]: 'Bank transfer',
  [PaymentMethod.CARD]: 'Card',
  [PaymentMethod.CASH]: 'Cash',
  [PaymentMethod.OTHER]: 'Other',
};

export const BRAND_ROLE_LABEL: Record<BrandRole, string> = {
  [BrandRole.UNSPECIFIED]: 'None',
  [BrandRole.MANAGER]: 'Manager',
  [BrandRole.AGENT]: 'Agent',
  [BrandRole.FINANCE]: 'Finance',
  [BrandRole.VIEWER]: 'Viewer',
};

export const ORG_ROLE_LABEL: Record<OrgRole, string> = {
  [OrgRole.UNSPECIFIED]: 'None',
  [OrgRole.OWNER]: 'Owner',
  [OrgRole.ADMIN]: 'Admin',
  [OrgRole.MEMBER]: 'Member',
  [OrgRole.ANALYST]: 'Analyst',
};

export const USER_STATE_LABEL: Record<UserState, string> = {
  [UserState.UNSPECIFIED]: 'Unknown',
  [UserState.INVITED]: 'Invited',
  [UserState.ACTIVE]: 'Active',
  [UserState.DEACTIVATED]: 'Deactivated',
};

export const SYNC_STAGE_LABEL: Record<SyncStage, string> = {
  [SyncStage.UNSPECIFIED]: 'Unknown',
  [SyncStage.PENDING]: 'Waiting for the first sync',
  [SyncStage.LISTING]: 'Listing messages',
  [SyncStage.IMPORTING]: 'Importing',
  [SyncStage.ACTIVE]: 'In sync',
  [SyncStage.THROTTLED]: 'Slowed down by Gmail',
  [SyncStage.NEEDS_REAUTH]: 'Needs you to reconnect',
  [SyncStage.FAILED]: 'Failing, retrying',
};

export const SYNC_STAGE_COLOR: Record<SyncStage, string> = {
  [SyncStage.UNSPECIFIED]: 'gray',
  [SyncStage.PENDING]: 'gray',
  [SyncStage.LISTING]: 'blue',
  [SyncStage.IMPORTING]: 'blue',
  [SyncStage.ACTIVE]: 'green',
  [SyncStage.THROTTLED]: 'yellow',
  [SyncStage.NEEDS_REAUTH]: 'red',
  [SyncStage.FAILED]: 'red',
};
