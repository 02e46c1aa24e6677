//! Templates: minijinja (Jinja2 syntax) with undefined names as errors, the HTML part escaped
//! automatically, and the data every trigger can provide described once ([`FIELDS`]), so a
//! template naming something no email will ever have is refused when it is saved, not when a
//! client's reminder fails at night.

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::{Value, json};

/// The objects templates may use and their fields.
pub const FIELDS: &[(&str, &[&str])] = &[
    ("brand", &["name", "display_name", "domain"]),
    ("sender", &["name", "email"]),
    ("recipient", &["name", "email"]),
    ("lead", &["contact_name", "email", "company", "phone", "source", "stage", "estimated_value"]),
    ("client", &["name", "email", "company", "phone"]),
    ("order", &["total", "total_minor", "currency", "status"]),
    (
        "invoice",
        &["number", "issue_date", "due_date", "total", "total_minor", "balance", "balance_minor", "currency", "status"],
    ),
    ("unsubscribe_url", &[]),
];

/// Which part of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The subject line.
    Subject,
    /// The HTML body.
    Html,
    /// The text body.
    Text,
}

impl Part {
    /// The request field it comes from.
    pub fn field(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html_body",
            Part::Text => "text_body",
        }
    }

    fn file(self) -> &'static str {
        match self {
            Part::Subject => "subject.txt",
            Part::Html => "body.html",
            Part::Text => "body.txt",
        }
    }
}

/// Why a template part cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", part.field())]
pub struct TemplateError {
    /// The part.
    pub part: Part,
    /// What is wrong, with the line when known (`line 3: undefined value invoice.numbr`).
    pub message: String,
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env
}

fn describe(part: Part, error: &minijinja::Error) -> TemplateError {
    let what = error.detail().map_or_else(|| error.kind().to_string(), ToOwned::to_owned);
    let message = match error.line() {
        Some(line) => format!("line {line}: {what}"),
        None => what,
    };
    TemplateError { part, message }
}

/// Renders one part with `data`.
pub fn render(part: Part, source: &str, data: &Value) -> Result<String, TemplateError> {
    environment().render_named_str(part.file(), source, data).map_err(|e| describe(part, &e))
}

/// Checks a part: it parses, names only [`FIELDS`], and renders with sample data.
pub fn check(part: Part, source: &str) -> Result<(), TemplateError> {
    let env = environment();
    let template = env.template_from_named_str(part.file(), source).map_err(|e| describe(part, &e))?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(true)
        .into_iter()
        .filter(|path| {
            let mut segments = path.split('.');
            let root = segments.next().unwrap_or_default();
            match FIELDS.iter().find(|(name, _)| *name == root) {
                None => true,
                Some((_, fields)) => segments.next().is_some_and(|field| !fields.contains(&field)),
            }
        })
        .collect();
    unknown.sort();
    if let Some(first) = unknown.first() {
        let line = source.lines().position(|l| l.contains(first.as_str())).map(|n| n + 1);
        let message = match line {
            Some(line) => format!("line {line}: {first} is not something an email can show"),
            None => format!("{first} is not something an email can show"),
        };
        return Err(TemplateError { part, message });
    }
    render(part, source, &sample()).map(drop)
}

/// Data shaped like a real email's, for previews and checks.
pub fn sample() -> Value {
    json!({
        "brand": {"name": "Northwind Studio", "display_name": "Northwind Studio", "domain": "app.northwind.example"},
        "sender": {"name": "Northwind Studio", "email": "hello@northwind.example"},
        "recipient": {"name": "Clara Client", "email": "clara@client.example"},
        "lead": {"contact_name": "Clara Client", "email": "clara@client.example", "company": "Client GmbH",
                 "phone": "+49 30 1234567", "source": "website", "stage": "Qualified", "estimated_value": "EUR 12,500.00"},
        "client": {"name": "Clara Client", "email": "clara@client.example", "company": "Client GmbH", "phone": "+49 30 1234567"},
        "order": {"total": "EUR 12,500.00", "total_minor": 1_250_000, "currency": "EUR", "status": "confirmed"},
        "invoice": {"number": "NW-2026-0042", "issue_date": "2026-11-01", "due_date": "2026-12-01", "total": "EUR 1,190.00",
                    "total_minor": 119_000, "balance": "EUR 1,190.00", "balance_minor": 119_000, "currency": "EUR", "status": "overdue"},
        "unsubscribe_url": "https://app.northwind.example/email/unsubscribe?token=sample",
    })
}

/// `EUR 1,250.00` from minor units (two decimals; the currency code leads).
pub fn money(currency: &str, minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{currency} {sign}{grouped}.{:02}", abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_escaping_only_in_html() {
        let data = json!({"client": {"name": "<Tom & Jerry>"}});
        assert_eq!(render(Part::Html, "Hi {{ client.name }}", &data).as_deref(), Ok("Hi &lt;Tom &amp; Jerry&gt;"));
        assert_eq!(render(Part::Text, "Hi {{ client.name }}", &data).as_deref(), Ok("Hi <Tom & Jerry>"));
    }

    #[test]
    fn errors_name_the_part_and_the_line() {
        let error = check(Part::Html, "<p>Hello</p>\n<p>{{ invoice.numbr }}</p>").err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some("html_body: line 2: invoice.numbr is not something an email can show"));
        let error = check(Part::Text, "Hello\n{% if %}").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.starts_with("text_body: line 2: "), "{error}");
        let error = check(Part::Subject, "{{ nobody }}").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("nobody"), "{error}");
        assert!(check(Part::Subject, "Invoice {{ invoice.number }} for {{ client.name }}").is_ok());
        assert!(check(Part::Html, "{% if invoice.balance_minor > 0 %}Due {{ invoice.due_date }}{% endif %}").is_ok());
    }

    #[test]
    fn money_groups_thousands() {
        assert_eq!(money("EUR", 125_000_050), "EUR 1,250,000.50");
        assert_eq!(money("USD", 5), "USD 0.05");
        assert_eq!(money("EUR", -119_000), "EUR -1,190.00");
    }
}
