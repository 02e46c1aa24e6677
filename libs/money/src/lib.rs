//! Exact money arithmetic shared by Sales (orders) and Finance (invoices): integer minor units,
//! quantities in thousandths, per-line rounding.
//!
//! Rounding rule (documented in the contract): each line is computed on its own and every
//! division rounds half away from zero:
//! `subtotal = unit_price x quantity`, `discount = subtotal x discount_bps / 10000`,
//! `tax = (subtotal - discount) x tax_rate_bps / 10000`, `total = subtotal - discount + tax`.
//! Order totals are sums of the rounded line amounts, so lines always add up to the order.
//! Intermediates are `i128`, and results that do not fit `i64` are errors, never wrapped.

use serde::{Deserialize, Serialize};

/// Why an amount cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The quantity is not a decimal with at most three fractional digits.
    #[error("must be a positive decimal with at most 3 fractional digits, such as 2.5")]
    BadQuantity,
    /// A result does not fit in 64 bits.
    #[error("amount is too large")]
    Overflow,
}

/// A quantity in thousandths of a unit (`2.5` is 2500).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quantity(pub i64);

impl Quantity {
    /// Parses `"2"`, `"2.5"`, `"0.125"`; must be positive.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || fraction.len() > 3
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(AmountError::BadQuantity);
        }
        let whole: i64 = whole.parse().map_err(|_| AmountError::BadQuantity)?;
        let fraction: i64 = if fraction.is_empty() {
            0
        } else {
            format!("{fraction:0<3}").parse().map_err(|_| AmountError::BadQuantity)?
        };
        let thousandths =
            whole.checked_mul(1000).and_then(|w| w.checked_add(fraction)).ok_or(AmountError::BadQuantity)?;
        if thousandths <= 0 {
            return Err(AmountError::BadQuantity);
        }
        Ok(Self(thousandths))
    }

    /// The canonical text: no trailing zeros (`2500` -> `"2.5"`).
    pub fn text(self) -> String {
        let (whole, fraction) = (self.0 / 1000, self.0 % 1000);
        if fraction == 0 {
            whole.to_string()
        } else {
            format!("{whole}.{}", format!("{fraction:03}").trim_end_matches('0'))
        }
    }
}

/// `numerator / denominator` rounded half away from zero (denominator > 0).
fn div_round(numerator: i128, denominator: i128) -> i128 {
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    if remainder.abs() * 2 >= denominator { quotient + numerator.signum() } else { quotient }
}

fn to_i64(value: i128) -> Result<i64, AmountError> {
    i64::try_from(value).map_err(|_| AmountError::Overflow)
}

/// The computed amounts of one line, in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LineAmounts {
    /// unit price x quantity.
    pub subtotal: i64,
    /// The discount.
    pub discount: i64,
    /// Tax on the discounted subtotal.
    pub tax: i64,
    /// subtotal - discount + tax.
    pub total: i64,
}

impl LineAmounts {
    /// Computes a line by the documented rule.
    pub fn compute(
        unit_price: i64,
        quantity: Quantity,
        tax_rate_bps: u32,
        discount_bps: u32,
    ) -> Result<Self, AmountError> {
        let subtotal = div_round(i128::from(unit_price) * i128::from(quantity.0), 1000);
        let discount = div_round(subtotal * i128::from(discount_bps), 10_000);
        let taxable = subtotal - discount;
        let tax = div_round(taxable * i128::from(tax_rate_bps), 10_000);
        Ok(Self {
            subtotal: to_i64(subtotal)?,
            discount: to_i64(discount)?,
            tax: to_i64(tax)?,
            total: to_i64(taxable + tax)?,
        })
    }

    /// Sum of lines, checked.
    pub fn sum<'a>(lines: impl IntoIterator<Item = &'a LineAmounts>) -> Result<Self, AmountError> {
        let mut acc = Self::default();
        for l in lines {
            acc.subtotal = acc.subtotal.checked_add(l.subtotal).ok_or(AmountError::Overflow)?;
            acc.discount = acc.discount.checked_add(l.discount).ok_or(AmountError::Overflow)?;
            acc.tax = acc.tax.checked_add(l.tax).ok_or(AmountError::Overflow)?;
            acc.total = acc.total.checked_add(l.total).ok_or(AmountError::Overflow)?;
        }
        Ok(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_exactly() {
        assert_eq!(Quantity::parse("2").unwrap(), Quantity(2000));
        assert_eq!(Quantity::parse("2.5").unwrap(), Quantity(2500));
        assert_eq!(Quantity::parse("0.125").unwrap(), Quantity(125));
        assert_eq!(Quantity::parse("0.125").unwrap().text(), "0.125");
        assert_eq!(Quantity(2500).text(), "2.5");
        for bad in ["", "0", "-1", "1.2345", "1.", ".5", "1e3", "abc", "1,5"] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lines_round_half_away_from_zero_per_step() {
        // 3 x 33.33 = 99.99; 10% discount = 9.999 -> 10.00; tax 19% of 89.99 = 17.0981 -> 17.10
        let line = LineAmounts::compute(3333, Quantity::parse("3").unwrap(), 1900, 1000).unwrap();
        assert_eq!(line, LineAmounts { subtotal: 9999, discount: 1000, tax: 1710, total: 10709 });
        // 0.5 x 0.01 = 0.005 -> 0.01 (half away from zero)
        let half = LineAmounts::compute(1, Quantity::parse("0.5").unwrap(), 0, 0).unwrap();
        assert_eq!(half.subtotal, 1);
        // Negative prices (credits) round symmetrically.
        let credit = LineAmounts::compute(-1, Quantity::parse("0.5").unwrap(), 0, 0).unwrap();
        assert_eq!(credit.subtotal, -1);
        assert_eq!(LineAmounts::compute(i64::MAX, Quantity(1_000_000), 0, 0), Err(AmountError::Overflow));
    }
}
