//! How Sales' domain errors become the shared application error (`sentra_kernel::AppError`),
//! which the runtime's one error table turns into statuses.

use crate::domain::client::ClientError;
use crate::domain::lead::LeadError;
use crate::domain::order::OrderError;

/// A failed Sales operation: the kernel's error, shared with Finance.
pub type SalesError = sentra_kernel::AppError;

impl From<LeadError> for SalesError {
    fn from(error: LeadError) -> Self {
        match error {
            LeadError::NotFound => SalesError::NotFound("lead"),
            LeadError::AlreadyExists => SalesError::AlreadyExists("lead"),
            LeadError::IllegalTransition(msg) => SalesError::illegal(msg),
        }
    }
}

impl From<ClientError> for SalesError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::NotFound => SalesError::NotFound("client"),
            ClientError::AlreadyExists => SalesError::AlreadyExists("client"),
            ClientError::Precondition(msg) => SalesError::illegal(msg),
        }
    }
}

impl From<OrderError> for SalesError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::NotFound => SalesError::NotFound("order"),
            OrderError::AlreadyExists => SalesError::AlreadyExists("order"),
            OrderError::IllegalTransition(msg) => SalesError::illegal(msg),
        }
    }
}
