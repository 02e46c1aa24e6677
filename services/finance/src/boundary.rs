//! Finance requests into domain values: every field checked and named in the error, so handlers
//! and the domain only see valid values. Public so the fuzz targets (`tools/fuzz`) reach it.

use chrono::{DateTime, NaiveDate, Utc};
use sentra_money::{LineAmounts, Quantity};
use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::r#type::v1::{Date, Money};
use sentra_runtime::wire;
use uuid::Uuid;

use crate::domain::invoice::Line;
use crate::error::FinanceError;

type Result<T> = std::result::Result<T, FinanceError>;

/// A required UUID field.
pub fn id(field: &'static str, value: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| FinanceError::invalid(field, "must be a UUID"))
}

/// An optional UUID field (empty means absent).
pub fn optional_id(field: &'static str, value: &str) -> Result<Option<Uuid>> {
    if value.trim().is_empty() { Ok(None) } else { id(field, value).map(Some) }
}

/// An etag from this API (`"7"`), or none when empty.
pub fn etag(value: &str) -> Result<Option<u64>> {
    if value.is_empty() {
        return Ok(None);
    }
    value.trim_matches('"').parse().map(Some).map_err(|_| FinanceError::invalid("etag", "is not an etag from this API"))
}

/// An optional idempotency key, at most 128 characters.
pub fn request_id(value: &str) -> Result<Option<String>> {
    match value.trim() {
        "" => Ok(None),
        v if v.len() <= 128 => Ok(Some(v.to_owned())),
        _ => Err(FinanceError::invalid("request_id", "must be at most 128 characters")),
    }
}

/// Trimmed text of at most `max` characters; `required` refuses empty text.
pub fn text(field: &'static str, value: &str, max: usize, required: bool) -> Result<String> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(FinanceError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FinanceError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(value.to_owned())
}

/// An ISO-4217 code, upper-cased.
pub fn currency(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim().to_ascii_uppercase();
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(value)
    } else {
        Err(FinanceError::invalid(field, "must be an ISO-4217 currency code such as EUR"))
    }
}

/// An optional calendar date in the contract's years 1 to 9999.
pub fn date(field: &'static str, value: Option<&Date>) -> Result<Option<NaiveDate>> {
    value
        .map(|d| {
            wire::date(d.year, d.month, d.day)
                .ok_or_else(|| FinanceError::invalid(field, "must be a calendar date in the years 1 to 9999"))
        })
        .transpose()
}

/// The AIP page size (0 means the default).
pub fn page_size(value: i32) -> Result<i64> {
    wire::page_size(value).ok_or_else(|| FinanceError::invalid("page_size", "must not be negative"))
}

/// A page token from a previous page, or none when empty.
pub fn page_token(value: &str) -> Result<Option<(DateTime<Utc>, Uuid)>> {
    wire::decode_cursor(value).map_err(|()| FinanceError::invalid("page_token", "is not a token from a previous page"))
}

/// Invoice lines with computed amounts, all in one currency.
pub fn lines(currency_code: &str, lines: &[pb::InvoiceLine]) -> Result<(String, Vec<Line>, LineAmounts)> {
    let code = if currency_code.trim().is_empty() {
        lines.iter().filter_map(|l| l.unit_price.as_ref()).map(|m| m.currency_code.clone()).next().unwrap_or_default()
    } else {
        currency_code.to_owned()
    };
    let code = currency("currency_code", &code)?;
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        let price = l.unit_price.as_ref().ok_or_else(|| FinanceError::invalid("lines.unit_price", "is required"))?;
        if currency("lines.unit_price.currency_code", &price.currency_code)? != code {
            return Err(FinanceError::invalid(
                "lines.unit_price.currency_code",
                format!("must be the invoice's currency {code}"),
            ));
        }
        let bps = |field: &'static str, v: i32| {
            u32::try_from(v)
                .ok()
                .filter(|b| *b <= 10_000)
                .ok_or_else(|| FinanceError::invalid(field, "must be between 0 and 10000"))
        };
        let quantity =
            Quantity::parse(&l.quantity).map_err(|e| FinanceError::invalid("lines.quantity", e.to_string()))?;
        let (tax, discount) = (bps("lines.tax_rate_bps", l.tax_rate_bps)?, bps("lines.discount_bps", l.discount_bps)?);
        sentra_money::bounded(price.amount_minor)
            .map_err(|e| FinanceError::invalid("lines.unit_price", e.to_string()))?;
        let amounts = LineAmounts::compute(price.amount_minor, quantity, tax, discount)
            .map_err(|e| FinanceError::invalid("lines.unit_price", e.to_string()))?;
        out.push(Line {
            description: text("lines.description", &l.description, 500, true)?,
            quantity,
            unit_price: price.amount_minor,
            tax_rate_bps: tax,
            discount_bps: discount,
            amounts,
        });
    }
    let totals =
        LineAmounts::sum(out.iter().map(|l| &l.amounts)).map_err(|e| FinanceError::invalid("lines", e.to_string()))?;
    if totals.total < 0 {
        return Err(FinanceError::invalid("lines", "the invoice's total must not be negative"));
    }
    Ok((code, out, totals))
}

/// A payment method as stored.
pub fn method_name(value: i32) -> Result<&'static str> {
    Ok(match pb::PaymentMethod::try_from(value) {
        Ok(pb::PaymentMethod::BankTransfer) => "bank_transfer",
        Ok(pb::PaymentMethod::Card) => "card",
        Ok(pb::PaymentMethod::Cash) => "cash",
        Ok(pb::PaymentMethod::Other) => "other",
        _ => return Err(FinanceError::invalid("method", "must be a payment method")),
    })
}

/// A positive, bounded amount in the invoice's currency.
pub fn amount(field: &'static str, money: Option<&Money>, invoice_currency: &str) -> Result<i64> {
    let money = money.ok_or_else(|| FinanceError::invalid(field, "is required"))?;
    if currency(field, &money.currency_code)? != invoice_currency {
        return Err(FinanceError::invalid(field, format!("must be in the invoice's currency {invoice_currency}")));
    }
    if money.amount_minor <= 0 {
        return Err(FinanceError::invalid(field, "must be positive"));
    }
    sentra_money::bounded(money.amount_minor).map_err(|e| FinanceError::invalid(field, e.to_string()))
}

#[cfg(test)]
mod properties {
    //! Whatever a client sends, the boundary answers `Ok` or an error naming a field: never a
    //! panic (the year-262142 issue date once was one), never an error without a field.

    use proptest::prelude::*;

    use super::*;

    fn money() -> impl Strategy<Value = Option<Money>> {
        proptest::option::of(
            (prop_oneof![Just("EUR".to_owned()), ".{0,5}"], any::<i64>())
                .prop_map(|(currency_code, amount_minor)| Money { currency_code, amount_minor }),
        )
    }

    fn line() -> impl Strategy<Value = pb::InvoiceLine> {
        (".{0,40}", prop_oneof![Just("1".to_owned()), ".{0,12}"], money(), any::<i32>(), any::<i32>()).prop_map(
            |(description, quantity, unit_price, tax_rate_bps, discount_bps)| pb::InvoiceLine {
                description,
                quantity,
                unit_price,
                tax_rate_bps,
                discount_bps,
                ..Default::default()
            },
        )
    }

    fn names_a_field<T: std::fmt::Debug>(result: Result<T>) -> std::result::Result<(), TestCaseError> {
        match result {
            Ok(_) => Ok(()),
            Err(FinanceError::Invalid { field, .. }) if !field.is_empty() => Ok(()),
            Err(other) => Err(TestCaseError::fail(format!("not a field error: {other:?}"))),
        }
    }

    proptest! {
        #[test]
        fn invoice_lines(currency in ".{0,5}", lines in proptest::collection::vec(line(), 0..6)) {
            names_a_field(super::lines(&currency, &lines))?;
        }

        #[test]
        fn amounts_and_dates(money in money(), year in any::<i32>(), month in any::<i32>(), day in any::<i32>()) {
            names_a_field(amount("amount", money.as_ref(), "EUR"))?;
            names_a_field(date("issue_date", Some(&Date { year, month, day })))?;
        }

        #[test]
        fn scalars(value in any::<i32>(), text in ".{0,300}") {
            names_a_field(method_name(value))?;
            names_a_field(page_size(value))?;
            names_a_field(page_token(&text))?;
            names_a_field(etag(&text))?;
            names_a_field(request_id(&text))?;
            names_a_field(currency("currency_code", &text))?;
            names_a_field(super::id("invoice_id", &text))?;
            names_a_field(text_field(&text))?;
        }
    }

    fn text_field(value: &str) -> Result<String> {
        text("reason", value, 500, true)
    }
}
