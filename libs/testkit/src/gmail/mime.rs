//! Mail the fake delivers: [`MailSpec`] built into MIME by mail-builder, the header reading the
//! server needs (threading, recipients, `format=metadata`), and the templates behind `seed`.

use chrono::{DateTime, Utc};
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::message_id::MessageId;
use rand::Rng;

use super::state::Mailbox;

/// A file attached to a [`MailSpec`].
#[derive(Clone, Debug)]
pub struct Attachment {
    /// The file name (`Content-Disposition: attachment; filename=…`).
    pub filename: String,
    /// The MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// The file's bytes.
    pub data: Vec<u8>,
}

/// A message to deliver with [`FakeGmail::deliver`](super::FakeGmail::deliver), built into real
/// MIME: text only, `multipart/alternative` with an HTML body, `multipart/mixed` with
/// attachments; non-ASCII headers are RFC 2047 encoded.
#[derive(Clone, Debug, Default)]
pub struct MailSpec {
    /// Sender as (display name, address); an empty name gives a bare address.
    pub from: (String, String),
    /// Recipients; empty means the mailbox owner.
    pub to: Vec<(String, String)>,
    /// Copy recipients.
    pub cc: Vec<(String, String)>,
    /// Subject (any Unicode).
    pub subject: String,
    /// The text/plain body (also the Gmail snippet).
    pub text: String,
    /// An optional text/html alternative.
    pub html: Option<String>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// Message-ID of the parent: sets In-Reply-To and References and joins the parent's thread.
    pub in_reply_to: Option<String>,
    /// The Message-ID (with or without angle brackets); `<uuid@fake.gmail>` when `None`.
    pub message_id: Option<String>,
    /// Gmail labels; `["INBOX", "UNREAD"]` when `None`.
    pub labels: Option<Vec<String>>,
    /// The Date header and internalDate; now when `None`.
    pub date: Option<DateTime<Utc>>,
}

impl MailSpec {
    /// A text message from `name <address>` with a subject and body.
    pub fn new(name: &str, address: &str, subject: &str, text: &str) -> Self {
        Self {
            from: (name.to_owned(), address.to_owned()),
            subject: subject.to_owned(),
            text: text.to_owned(),
            ..Self::default()
        }
    }

    /// Adds a To recipient.
    pub fn to(mut self, name: &str, address: &str) -> Self {
        self.to.push((name.to_owned(), address.to_owned()));
        self
    }

    /// Adds a Cc recipient.
    pub fn cc(mut self, name: &str, address: &str) -> Self {
        self.cc.push((name.to_owned(), address.to_owned()));
        self
    }

    /// Sets the HTML alternative.
    pub fn html(mut self, html: &str) -> Self {
        self.html = Some(html.to_owned());
        self
    }

    /// Adds an attachment.
    pub fn attach(mut self, filename: &str, content_type: &str, data: impl Into<Vec<u8>>) -> Self {
        let attachment =
            Attachment { filename: filename.to_owned(), content_type: content_type.to_owned(), data: data.into() };
        self.attachments.push(attachment);
        self
    }

    /// Makes this a reply to the message with this Message-ID.
    pub fn in_reply_to(mut self, parent: &str) -> Self {
        self.in_reply_to = Some(parent.to_owned());
        self
    }

    /// Sets the Message-ID.
    pub fn message_id(mut self, id: &str) -> Self {
        self.message_id = Some(id.to_owned());
        self
    }

    /// Sets the labels.
    pub fn labels(mut self, labels: &[&str]) -> Self {
        self.labels = Some(labels.iter().map(|l| (*l).to_owned()).collect());
        self
    }

    /// Sets the date.
    pub fn date(mut self, date: DateTime<Utc>) -> Self {
        self.date = Some(date);
        self
    }
}

fn address((name, email): &(String, String)) -> Address<'_> {
    if name.is_empty() { Address::from(email.as_str()) } else { Address::from((name.as_str(), email.as_str())) }
}

/// The message as Gmail stores it: `Delivered-To` then the mail-builder output.
pub(super) fn build(spec: &MailSpec, owner: &str, message_id: &str, references: &[String], date_secs: i64) -> Vec<u8> {
    let mut builder = MessageBuilder::new()
        .from(address(&spec.from))
        .subject(spec.subject.as_str())
        .message_id(message_id)
        .date(Date::new(date_secs))
        .text_body(spec.text.as_str());
    builder = if spec.to.is_empty() {
        builder.to(owner)
    } else {
        builder.to(spec.to.iter().map(address).collect::<Vec<_>>())
    };
    if !spec.cc.is_empty() {
        builder = builder.cc(spec.cc.iter().map(address).collect::<Vec<_>>());
    }
    if let Some(parent) = references.last() {
        builder = builder
            .in_reply_to(strip_brackets(parent))
            .references(MessageId::new_list(references.iter().map(|r| strip_brackets(r))));
    }
    if let Some(html) = &spec.html {
        builder = builder.html_body(html.as_str());
    }
    for a in &spec.attachments {
        builder = builder.attachment(a.content_type.as_str(), a.filename.as_str(), a.data.as_slice());
    }
    let mut raw = format!("Delivered-To: {owner}\r\n").into_bytes();
    // Writing into a Vec cannot fail.
    let _ = builder.write_to(&mut raw);
    raw
}

/// Gmail's snippet: the start of the text, whitespace collapsed.
pub(super) fn snippet(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect()
}

/// `<id>` or `id` → `id`.
pub(super) fn strip_brackets(id: &str) -> &str {
    id.trim().trim_start_matches('<').trim_end_matches('>')
}

/// The header block, unfolded, as (name, value) pairs in order; lenient with junk.
pub(super) fn headers(raw: &[u8]) -> Vec<(String, String)> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    let text = String::from_utf8_lossy(raw.get(..end).unwrap_or(raw));
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    out
}

/// The first header called `name` (case-insensitive).
pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The `<…>` ids in a Message-ID/In-Reply-To/References value, brackets kept.
pub(super) fn message_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else { break };
        ids.push(rest[start..=start + len].to_owned());
        rest = &rest[start + len + 1..];
    }
    if ids.is_empty() && !value.trim().is_empty() {
        ids.push(format!("<{}>", value.trim()));
    }
    ids
}

/// A `seed` template: sender name and address, subject, text, whether an HTML alternative is
/// added, and an optional attachment (file name, MIME type).
type Template = (&'static str, &'static str, &'static str, &'static str, bool, Option<(&'static str, &'static str)>);

/// Senders, subjects and bodies for `seed`: several languages, HTML, attachments.
const TEMPLATES: &[Template] = &[
    (
        "Anna Schmidt",
        "anna.schmidt@kunde-gmbh.example",
        "Überweisung bestätigt – Rechnung 2024-118",
        "Hallo,\n\ndie Überweisung ist heute rausgegangen. Anbei der Beleg.\n\nViele Grüße\nAnna",
        false,
        Some(("beleg.pdf", "application/pdf")),
    ),
    (
        "Marc Dubois",
        "marc@dubois-creations.example",
        "Réunion de lundi : ordre du jour",
        "Bonjour,\n\nVoici l'ordre du jour pour lundi : bilan du trimestre, nouvelle charte, budget.\n\nMarc",
        true,
        None,
    ),
    (
        "田中 太郎",
        "tanaka@example.co.jp",
        "見積もりのご依頼",
        "お世話になっております。\n新しいキャンペーンのお見積もりをお願いできますでしょうか。\n田中",
        false,
        None,
    ),
    (
        "Olga Petrova",
        "olga@retail.example.ru",
        "Заказ №4521 отправлен",
        "Здравствуйте!\n\nВаш заказ №4521 передан в доставку.\n\nОльга",
        true,
        None,
    ),
    (
        "Stripe",
        "receipts@stripe.example.com",
        "Your receipt from Acme Studio #1942-3381",
        "Receipt #1942-3381\nAmount paid: $1,250.00\nDate paid: this morning",
        true,
        Some(("receipt.pdf", "application/pdf")),
    ),
    (
        "Jordan Lee",
        "jordan.lee@brightlabs.example",
        "Q3 campaign brief",
        "Hi team,\n\nAttached is the Q3 brief with the audience numbers. Can we review Thursday?\n\nJordan",
        false,
        Some(("audience.csv", "text/csv")),
    ),
    (
        "Priya Nair",
        "priya@nairdesign.example",
        "Logo concepts v2 🎨",
        "Hi!\n\nSecond round of logo concepts attached. I prefer option B.\n\nPriya",
        true,
        Some(("concepts.png", "image/png")),
    ),
    (
        "LinkedIn",
        "messages-noreply@linkedin.example.com",
        "You appeared in 12 searches this week",
        "You appeared in 12 searches this week. See who's looking at your profile.",
        true,
        None,
    ),
    (
        "Tom Becker",
        "tom@becker-law.example",
        "Contract redlines",
        "Hi,\n\nRedlines on sections 4 and 9 attached. The indemnity cap is the open point.\n\nTom",
        false,
        Some(("contract-redlines.pdf", "application/pdf")),
    ),
    (
        "Sofía García",
        "sofia.garcia@agencia.example.es",
        "¿Podemos mover la llamada al jueves?",
        "Hola,\n\n¿Podemos mover la llamada del miércoles al jueves a las 10?\n\nGracias,\nSofía",
        false,
        None,
    ),
    (
        "GitHub",
        "noreply@github.example.com",
        "[sentra/web] Build failed on main",
        "Build #4812 failed on main: 2 tests failed in apps/web.",
        false,
        None,
    ),
    (
        "Lena Novák",
        "lena@novak.example.cz",
        "Invoice overdue – please advise",
        "Hello,\n\nInvoice 2024-077 is now 14 days overdue. Could you check on your side?\n\nBest,\nLena",
        true,
        None,
    ),
];

/// Pre-built bodies for `seed`: per template the original, a reply from the sender and a reply
/// from the mailbox owner, each as header lines minus Message-ID/Date, plus the body.
struct SeedTemplates {
    variants: Vec<[(Vec<u8>, String); 3]>,
}

fn attachment_bytes(content_type: &str, i: usize) -> Vec<u8> {
    let head: &[u8] = match content_type {
        "application/pdf" => b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n",
        "image/png" => b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        _ => b"name,email,segment\n",
    };
    let mut data = head.to_vec();
    data.extend((0..1500 + 97 * i).map(|n| (n % 251) as u8));
    data
}

fn strip_id_and_date(raw: &[u8]) -> Vec<u8> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let (head, body) = (raw.get(..split).unwrap_or(raw), raw.get(split + 4..).unwrap_or_default());
    let mut out = Vec::with_capacity(raw.len());
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let per_message = [&b"Message-ID:"[..], b"Date:", b"Delivered-To:"].iter().any(|h| line.starts_with(h));
        if !per_message {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

impl SeedTemplates {
    fn new(owner: &str) -> Self {
        let variants = TEMPLATES
            .iter()
            .enumerate()
            .map(|(i, (name, addr, subject, text, html, file))| {
                let from = ((*name).to_owned(), (*addr).to_owned());
                let me = (String::new(), owner.to_owned());
                let mut original = MailSpec::new(name, addr, subject, text);
                if *html {
                    let body = text.replace('\n', "<br>\n");
                    original = original.html(&format!("<html><body><div dir=\"ltr\">{body}</div></body></html>"));
                }
                if let Some((filename, content_type)) = file {
                    original = original.attach(filename, content_type, attachment_bytes(content_type, i));
                }
                let reply_text = format!("Following up on this.\n\n{text}");
                let reply = MailSpec { subject: format!("Re: {subject}"), text: reply_text, ..MailSpec::default() };
                let reply = MailSpec { from: from.clone(), ..reply };
                let mine = MailSpec {
                    from: me,
                    to: vec![from],
                    subject: format!("Re: {subject}"),
                    text: "Thanks, noted. I'll get back to you by end of day.".to_owned(),
                    ..MailSpec::default()
                };
                [original, reply, mine].map(|spec| {
                    let raw = build(&spec, owner, "seed@fake.gmail", &[], 0);
                    (strip_id_and_date(&raw), snippet(&spec.text))
                })
            })
            .collect();
        Self { variants }
    }
}

/// Delivers `n` messages to `mailbox`: arrival times spread over the past up to now, about a
/// third of them replies (threads of 2–3, half answered by the owner and labelled SENT), a few
/// in SPAM or TRASH; one message per id in `ids`.
pub(super) fn seed(mailbox: &mut Mailbox, owner: &str, ids: Vec<String>, rng: &mut impl Rng) {
    let templates = SeedTemplates::new(owner);
    let n = ids.len();
    // Open threads: (template, References chain, length so far).
    let mut open: Vec<(usize, Vec<String>, usize)> = Vec::new();
    let mut secs = Utc::now().timestamp() - 900 * n as i64;
    for (i, id) in ids.into_iter().enumerate() {
        secs += rng.gen_range(60..1740);
        let own_id = format!("<{:08x}{i:06}.seed@fake.gmail>", rng.r#gen::<u32>());
        let reply = if !open.is_empty() && rng.gen_bool(0.35) {
            Some(open.swap_remove(rng.gen_range(0..open.len())))
        } else {
            None
        };
        let (variant, labels, chain, template, len) = match reply {
            Some((template, chain, len)) if rng.gen_bool(0.5) => (2, vec!["SENT"], chain, template, len),
            Some((template, chain, len)) => (1, vec!["INBOX", "UNREAD"], chain, template, len),
            None => {
                let labels = match rng.gen_range(0..100) {
                    0 => vec!["SPAM"],
                    1 => vec!["TRASH"],
                    2..40 => vec!["INBOX", "UNREAD"],
                    40..55 => vec!["INBOX", "IMPORTANT"],
                    55..70 => vec!["INBOX", "CATEGORY_PROMOTIONS"],
                    _ => vec!["INBOX"],
                };
                (0, labels, Vec::new(), rng.gen_range(0..templates.variants.len()), 0)
            }
        };
        let Some((body, snippet)) = templates.variants.get(template).and_then(|v| v.get(variant)) else { continue };
        // Mail the owner sent carries no Delivered-To.
        let delivered_to = if variant == 2 { String::new() } else { format!("Delivered-To: {owner}\r\n") };
        let mut raw = format!("{delivered_to}Message-ID: {own_id}\r\nDate: {}\r\n", Date::new(secs).to_rfc822());
        if let Some(parent) = chain.last() {
            raw.push_str(&format!("In-Reply-To: {parent}\r\nReferences: {}\r\n", chain.join(" ")));
        }
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(body);
        let labels = labels.into_iter().map(str::to_owned).collect();
        mailbox.insert(id, raw, labels, secs * 1000, snippet.clone(), None);
        if len < 2 && (variant != 0 || open.len() < 6) {
            let mut chain = chain;
            chain.push(own_id);
            open.push((template, chain, len + 1));
        }
    }
}
