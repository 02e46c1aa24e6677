//! An invoice's life driven by arbitrary requests: lines, issue dates, payments, credit notes,
//! overdue checks and voids, each validated by Finance's boundary and decided by the aggregate,
//! as the service does. Money must never wrap, saturate or leave its bound.

use arbitrary::{Result, Unstructured};
use chrono::{DateTime, Utc};
use sentra_finance::boundary as fin;
use sentra_finance::domain::invoice::{CreditNote, Invoice, InvoiceCommand, InvoiceEvent, Payment, Status};
use sentra_money::MAX_AMOUNT;
use sentra_proto::sentra::finance::v1 as fpb;
use sentra_proto::sentra::r#type::v1::{Date, Money};
use uuid::Uuid;

/// Amounts a person would type, the bound's edges, and anything at all.
fn amount(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(match u.int_in_range(0..=4)? {
        0 => u.int_in_range(-100..=100_000)?,
        1 => MAX_AMOUNT + i64::from(u.int_in_range(-2..=2)?),
        2 => -MAX_AMOUNT + i64::from(u.int_in_range(-2..=2)?),
        3 => *u.choose(&[i64::MAX, i64::MIN, i64::MAX / 2, 0, 1, -1])?,
        _ => u.arbitrary()?,
    })
}

fn money(u: &mut Unstructured<'_>) -> Result<Option<Money>> {
    if u.ratio(1, 20)? {
        return Ok(None);
    }
    let currency_code = if u.ratio(1, 10)? { u.arbitrary()? } else { "EUR".to_owned() };
    Ok(Some(Money { currency_code, amount_minor: amount(u)? }))
}

fn date(u: &mut Unstructured<'_>) -> Result<Option<Date>> {
    Ok(Some(if u.ratio(1, 5)? {
        Date { year: u.arbitrary()?, month: u.arbitrary()?, day: u.arbitrary()? }
    } else {
        Date { year: u.int_in_range(1..=9999)?, month: u.int_in_range(1..=12)?, day: u.int_in_range(1..=28)? }
    }))
}

fn bps(u: &mut Unstructured<'_>) -> Result<i32> {
    if u.ratio(1, 10)? { u.arbitrary() } else { u.int_in_range(0..=10_000) }
}

fn lines(u: &mut Unstructured<'_>) -> Result<Vec<fpb::InvoiceLine>> {
    let count = u.int_in_range(0..=4)?;
    (0..count)
        .map(|_| {
            Ok(fpb::InvoiceLine {
                description: if u.ratio(1, 10)? { u.arbitrary()? } else { "Design sprint".to_owned() },
                quantity: if u.ratio(1, 5)? {
                    u.arbitrary()?
                } else {
                    (*u.choose(&["1", "0.5", "3", "0.001", "1000000", "-1"])?).to_owned()
                },
                unit_price: money(u)?,
                tax_rate_bps: bps(u)?,
                discount_bps: bps(u)?,
                ..Default::default()
            })
        })
        .collect()
}

fn at(u: &mut Unstructured<'_>) -> Result<DateTime<Utc>> {
    Ok(DateTime::from_timestamp(u.int_in_range(0..=4_102_444_800)?, 0).unwrap_or_default())
}

/// The next command, or `None` when the request would not pass the boundary.
fn command(u: &mut Unstructured<'_>, invoice: &Invoice) -> Result<Option<InvoiceCommand>> {
    Ok(match u.int_in_range(0..=5)? {
        0 => fin::lines(&invoice.currency, &lines(u)?)
            .ok()
            .map(|(_, lines, totals)| InvoiceCommand::UpdateLines { lines, totals }),
        1 => fin::date("issue_date", date(u)?.as_ref())
            .ok()
            .flatten()
            .map(|issue_date| InvoiceCommand::Issue { number: "INV-1".into(), issue_date }),
        2 => {
            let (amount, paid_on, at) = (money(u)?, date(u)?, at(u)?);
            match (fin::amount("amount", amount.as_ref(), &invoice.currency), fin::date("paid_on", paid_on.as_ref())) {
                (Ok(amount), Ok(Some(paid_on))) => Some(InvoiceCommand::RecordPayment {
                    payment: Payment {
                        id: Uuid::new_v4(),
                        amount,
                        method: "bank_transfer".into(),
                        reference: String::new(),
                        paid_on,
                        at,
                    },
                }),
                _ => None,
            }
        }
        3 => {
            let (amount, on) = (money(u)?, date(u)?);
            match (fin::amount("amount", amount.as_ref(), &invoice.currency), fin::date("issued_on", on.as_ref())) {
                (Ok(amount), Ok(Some(issued_on))) => Some(InvoiceCommand::IssueCreditNote {
                    credit_note: CreditNote {
                        id: Uuid::new_v4(),
                        number: "CN-1".into(),
                        amount,
                        reason: "goodwill".into(),
                        issued_on,
                    },
                }),
                _ => None,
            }
        }
        4 => fin::date("today", date(u)?.as_ref()).ok().flatten().map(|today| InvoiceCommand::CheckOverdue { today }),
        _ => Some(InvoiceCommand::Void { reason: "fuzz".into() }),
    })
}

fn check(invoice: &Invoice) {
    let (paid, credited, total) = (invoice.paid(), invoice.credited(), invoice.totals.total);
    assert!((0..=MAX_AMOUNT).contains(&total), "total {total} out of bounds");
    assert!((0..=MAX_AMOUNT).contains(&paid), "payments add up to {paid}");
    assert!((0..=total).contains(&credited), "credited {credited} of a total {total}");
    // No sum saturated: the exact arithmetic agrees with the invoice's.
    let exact = i128::from(total) - i128::from(paid) - i128::from(credited);
    assert_eq!(i128::from(invoice.balance()), exact.max(0), "balance");
    assert_eq!(i128::from(invoice.overpaid()), (-exact).max(0), "overpaid");
    if invoice.status == Status::Paid {
        assert_eq!(invoice.balance(), 0, "a paid invoice owes nothing");
    }
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let rt = crate::guard::runtime();
    let Ok((currency, lines, totals)) = fin::lines("", &lines(u)?) else { return Ok(()) };
    let mut invoice = Invoice::default();
    let draft = InvoiceCommand::Draft {
        brand_id: Uuid::nil(),
        client_id: Uuid::nil(),
        order_id: None,
        currency,
        lines,
        totals,
        terms_days: u.int_in_range(0..=365)?,
    };
    rt.block_on(sentra_event_store::decide(&mut invoice, draft, &())).expect("a fresh invoice takes a draft");
    check(&invoice);
    while !u.is_empty() {
        let Some(command) = command(u, &invoice)? else { continue };
        // Refusals are the aggregate's business; what it accepts must keep the money sound and
        // survive the store's JSON round trip.
        if let Ok(events) = rt.block_on(sentra_event_store::decide(&mut invoice, command, &())) {
            for event in events {
                let json = serde_json::to_value(&event).expect("an event serializes");
                let back: InvoiceEvent = serde_json::from_value(json).expect("an event reads back");
                assert_eq!(back, event);
            }
        }
        check(&invoice);
    }
    Ok(())
}

/// Arbitrary bytes as a draft followed by a sequence of commands.
pub fn invoice_money(data: &[u8]) {
    let _ = run(&mut Unstructured::new(data));
}
