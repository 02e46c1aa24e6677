//! Exact money arithmetic shared by Sales (orders) and Finance (invoices): integer minor units,
//! quantities in thousandths, per-line rounding.
//!
//! Rounding rule (documented in the contract): each line is computed on its own and every
//! division rounds half away from zero:
//! `subtotal = unit_price x quantity`, `discount = subtotal x discount_bps / 10000`,
//! `tax = (subtotal - discount) x tax_rate_bps / 10000`, `total = subtotal - discount + tax`.
//! Order totals are sums of the rounded line amounts, so lines always add up to the order.
//! Intermediates are `i128`, and results beyond [`MAX_AMOUNT`] are errors, never wrapped.
//!
//! Every amount Sentra accepts or computes lies within ±[`MAX_AMOUNT`] minor units (10^15: ten
//! trillion euros in cents), checked at the boundary ([`bounded`]) and after every computation,
//! so sums of a few thousand of them still fit `i64` with room to spare.

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
    /// A tax or discount rate is above 100 %.
    #[error("must be between 0 and 10000 basis points")]
    BadRate,
    /// An amount is beyond ±[`MAX_AMOUNT`].
    #[error("must be between -1000000000000000 and 1000000000000000 minor units")]
    OutOfRange,
}

/// The largest magnitude of an amount, in minor units (10^15).
pub const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// `amount` if its magnitude is at most [`MAX_AMOUNT`].
pub fn bounded(amount: i64) -> Result<i64, AmountError> {
    if (-MAX_AMOUNT..=MAX_AMOUNT).contains(&amount) { Ok(amount) } else { Err(AmountError::OutOfRange) }
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

/// A computed amount, if it fits the bound (anything beyond is "too large", never wrapped).
fn to_i64(value: i128) -> Result<i64, AmountError> {
    let value = i64::try_from(value).map_err(|_| AmountError::Overflow)?;
    bounded(value).map_err(|_| AmountError::Overflow)
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
    /// Computes a line by the documented rule. Rates above 100 % (10 000 basis points) and
    /// results beyond the bound are errors.
    pub fn compute(
        unit_price: i64,
        quantity: Quantity,
        tax_rate_bps: u32,
        discount_bps: u32,
    ) -> Result<Self, AmountError> {
        if tax_rate_bps > 10_000 || discount_bps > 10_000 {
            return Err(AmountError::BadRate);
        }
        // Bounded before it is multiplied again, so no intermediate can leave i128.
        let subtotal = to_i64(div_round(i128::from(unit_price) * i128::from(quantity.0), 1000))?;
        let discount = div_round(i128::from(subtotal) * i128::from(discount_bps), 10_000);
        let taxable = i128::from(subtotal) - discount;
        let tax = div_round(taxable * i128::from(tax_rate_bps), 10_000);
        Ok(Self { subtotal, discount: to_i64(discount)?, tax: to_i64(tax)?, total: to_i64(taxable + tax)? })
    }

    /// Sum of lines, checked: every partial sum stays within the bound.
    pub fn sum<'a>(lines: impl IntoIterator<Item = &'a LineAmounts>) -> Result<Self, AmountError> {
        let add = |a: i64, b: i64| to_i64(i128::from(a) + i128::from(b));
        let mut acc = Self::default();
        for l in lines {
            acc.subtotal = add(acc.subtotal, l.subtotal)?;
            acc.discount = add(acc.discount, l.discount)?;
            acc.tax = add(acc.tax, l.tax)?;
            acc.total = add(acc.total, l.total)?;
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

    #[test]
    fn amounts_are_bounded_and_sums_never_wrap() {
        assert_eq!(bounded(MAX_AMOUNT), Ok(MAX_AMOUNT));
        assert_eq!(bounded(-MAX_AMOUNT), Ok(-MAX_AMOUNT));
        assert_eq!(bounded(MAX_AMOUNT + 1), Err(AmountError::OutOfRange));
        assert_eq!(bounded(i64::MIN), Err(AmountError::OutOfRange));
        let big = LineAmounts::compute(MAX_AMOUNT, Quantity(1000), 0, 0).unwrap();
        assert_eq!(LineAmounts::sum([&big, &big]), Err(AmountError::Overflow));
        assert_eq!(LineAmounts::compute(MAX_AMOUNT, Quantity(2000), 0, 0), Err(AmountError::Overflow));
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Any input gives a result or a clean error: never a panic, never a wrap, and every
            /// result obeys the documented rule within the bound.
            #[test]
            fn any_line_computes_or_refuses(unit_price: i64, quantity: i64, tax: u32, discount: u32) {
                if let Ok(line) = LineAmounts::compute(unit_price, Quantity(quantity), tax, discount) {
                    for v in [line.subtotal, line.discount, line.tax, line.total] {
                        prop_assert!(bounded(v).is_ok());
                    }
                    prop_assert_eq!(i128::from(line.total), i128::from(line.subtotal) - i128::from(line.discount) + i128::from(line.tax));
                }
            }

            #[test]
            fn any_sum_adds_up_or_refuses(values in proptest::collection::vec(-MAX_AMOUNT..=MAX_AMOUNT, 0..50)) {
                let lines: Vec<LineAmounts> = values.iter().map(|&v| LineAmounts { subtotal: v, discount: 0, tax: 0, total: v }).collect();
                let exact: i128 = values.iter().map(|&v| i128::from(v)).sum();
                match LineAmounts::sum(&lines) {
                    Ok(sum) => prop_assert_eq!(i128::from(sum.total), exact),
                    Err(_) => {
                        let mut partial = 0i128;
                        let mut beyond = false;
                        for &v in &values {
                            partial += i128::from(v);
                            beyond |= partial.abs() > i128::from(MAX_AMOUNT);
                        }
                        prop_assert!(beyond, "refused a sum that stays in bounds");
                    }
                }
            }

            #[test]
            fn any_text_parses_or_refuses(text in "\\PC{0,24}") {
                if let Ok(q) = Quantity::parse(&text) {
                    prop_assert!(q.0 > 0);
                    prop_assert_eq!(Quantity::parse(&q.text()), Ok(q));
                }
            }
        }
    }
}
