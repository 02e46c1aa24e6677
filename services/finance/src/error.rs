//! How Finance's domain errors become the shared application error (`sentra_kernel::AppError`),
//! which the runtime's one error table turns into statuses.

use crate::domain::invoice::InvoiceError;

/// A failed Finance operation: the kernel's error, shared with Sales.
pub type FinanceError = sentra_kernel::AppError;

impl From<InvoiceError> for FinanceError {
    fn from(error: InvoiceError) -> Self {
        match error {
            InvoiceError::NotFound => FinanceError::NotFound("invoice"),
            InvoiceError::AlreadyExists => FinanceError::AlreadyExists("invoice"),
            InvoiceError::IllegalTransition(msg) => FinanceError::illegal(msg),
            InvoiceError::InvalidAmount(msg) => FinanceError::Invalid { field: "amount", reason: msg },
        }
    }
}
