//! Reading untrusted mail and building what we send.
//!
//! Parsing is Stalwart's `mail-parser` (RFC 5322, MIME, RFC 2047 encoded words, charsets);
//! HTML bodies are sanitised with `ammonia` before they are stored, so nothing a client later
//! renders can run script, submit forms or carry event handlers. A message that cannot be parsed
//! is still stored, with what could be read and `parse_error` set: a bad message never stops a
//! sync.

use chrono::{DateTime, TimeZone as _, Utc};
use mail_parser::{MessageParser, MimeHeaders as _};
use serde::{Deserialize, Serialize};

/// Bodies longer than this are cut (per body); the provider keeps the original.
pub const MAX_BODY_CHARS: usize = 512 * 1024;
/// Messages larger than this are not parsed beyond their headers.
pub const MAX_PARSED_BYTES: usize = 25 * 1024 * 1024;

/// An address with an optional display name, addresses in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mailbox {
    /// Display name; may be empty.
    pub name: String,
    /// The address, lower case.
    pub email: String,
}

/// An attachment's description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    /// File name.
    pub file_name: String,
    /// MIME type.
    pub content_type: String,
    /// Size in bytes (decoded).
    pub size: i64,
}

/// What Comm keeps of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedMail {
    /// Message-ID without angle brackets; empty if none.
    pub message_id: String,
    /// In-Reply-To (first id).
    pub in_reply_to: String,
    /// References, oldest first.
    pub references: Vec<String>,
    /// From.
    pub from: Option<Mailbox>,
    /// To.
    pub to: Vec<Mailbox>,
    /// Cc.
    pub cc: Vec<Mailbox>,
    /// Decoded subject.
    pub subject: String,
    /// Plain text (from the text part, else derived from the HTML).
    pub text_body: String,
    /// Sanitised HTML, empty when the message has none.
    pub html_body: String,
    /// The Date header, if readable.
    pub date: Option<DateTime<Utc>>,
    /// Attachments.
    pub attachments: Vec<AttachmentInfo>,
    /// The message could not be fully parsed.
    pub parse_error: bool,
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_BODY_CHARS) {
        Some((at, _)) => text[..at].to_owned(),
        None => text.to_owned(),
    }
}

fn addresses(list: Option<&mail_parser::Address<'_>>) -> Vec<Mailbox> {
    list.map(|a| {
        a.iter()
            .filter_map(|addr| {
                let email = addr.address.as_deref()?.trim().to_lowercase();
                (!email.is_empty())
                    .then(|| Mailbox { name: addr.name.as_deref().unwrap_or_default().trim().to_owned(), email })
            })
            .collect()
    })
    .unwrap_or_default()
}

fn ids(value: &mail_parser::HeaderValue<'_>) -> Vec<String> {
    match value {
        mail_parser::HeaderValue::Text(t) => vec![t.to_string()],
        mail_parser::HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
}

/// Removes scripts, styles, event handlers, forms and non-web URL schemes; links get
/// `rel="noopener noreferrer nofollow"`.
pub fn sanitize_html(html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto", "cid"].into_iter().collect())
        .clean(html)
        .to_string()
}

/// Parses raw RFC 5322 bytes. Never fails: unreadable input gives `parse_error` and whatever
/// could be read.
pub fn parse(raw: &[u8]) -> ParsedMail {
    let oversized = raw.len() > MAX_PARSED_BYTES;
    let parser = MessageParser::default();
    let parsed = if oversized { parser.parse_headers(raw) } else { parser.parse(raw) };
    let Some(message) = parsed else {
        return ParsedMail {
            message_id: String::new(),
            in_reply_to: String::new(),
            references: Vec::new(),
            from: None,
            to: Vec::new(),
            cc: Vec::new(),
            subject: String::new(),
            text_body: cut(&String::from_utf8_lossy(raw)),
            html_body: String::new(),
            date: None,
            attachments: Vec::new(),
            parse_error: true,
        };
    };
    let html = message.body_html(0).map(|h| sanitize_html(&cut(&h))).unwrap_or_default();
    let text = message.body_text(0).map(|t| cut(&t)).unwrap_or_default();
    let attachments = message
        .attachments()
        .map(|part| AttachmentInfo {
            file_name: part.attachment_name().unwrap_or("attachment").to_owned(),
            content_type: part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_owned(),
                })
                .unwrap_or_else(|| "application/octet-stream".into()),
            size: i64::try_from(part.contents().len()).unwrap_or(i64::MAX),
        })
        .collect();
    let from = addresses(message.from()).into_iter().next();
    // A message without From or Date is malformed for RFC 5322 (both are required).
    let date = message.date().and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single());
    let parse_error = from.is_none() || date.is_none();
    ParsedMail {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        in_reply_to: ids(message.in_reply_to()).into_iter().next().unwrap_or_default(),
        references: ids(message.references()),
        from,
        to: addresses(message.to()),
        cc: addresses(message.cc()),
        subject: message.subject().unwrap_or_default().to_owned(),
        text_body: text,
        html_body: html,
        date,
        attachments,
        parse_error,
    }
}

/// An email to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// From.
    pub from: Mailbox,
    /// To.
    pub to: Vec<Mailbox>,
    /// Cc.
    pub cc: Vec<Mailbox>,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text_body: String,
    /// The Message-ID to give it (without brackets).
    pub message_id: String,
    /// The parent's Message-ID, when replying.
    pub in_reply_to: Option<String>,
    /// The thread's references, when replying (parent's references + parent's id).
    pub references: Vec<String>,
    /// Date.
    pub date: DateTime<Utc>,
}

/// RFC 5322 bytes of `mail`, built with `mail-builder` (encoded words for non-ASCII headers,
/// quoted-printable or base64 bodies as needed).
pub fn build(mail: &Outgoing) -> std::io::Result<Vec<u8>> {
    let pair = |m: &Mailbox| (m.name.clone(), m.email.clone());
    let mut builder = mail_builder::MessageBuilder::new()
        .from(pair(&mail.from))
        .to(mail.to.iter().map(pair).collect::<Vec<_>>())
        .subject(mail.subject.clone())
        .message_id(mail.message_id.clone())
        .date(mail.date.timestamp())
        .text_body(mail.text_body.clone());
    if !mail.cc.is_empty() {
        builder = builder.cc(mail.cc.iter().map(pair).collect::<Vec<_>>());
    }
    if let Some(parent) = &mail.in_reply_to {
        builder = builder.in_reply_to(parent.clone()).references(mail.references.clone());
    }
    builder.write_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_multipart_message_with_encoded_headers_and_sanitises_html() {
        let raw = concat!(
            "From: =?UTF-8?Q?Ren=C3=A9e_Dupr=C3=A9?= <Renee@Client.Example>\r\n",
            "To: agent@agency.example, \"Bo\" <bo@agency.example>\r\n",
            "Subject: =?UTF-8?B?RGV2aXMgcG91ciBsZSBzaXRlIMOpdMOp?=\r\n",
            "Message-ID: <abc@client.example>\r\n",
            "In-Reply-To: <parent@agency.example>\r\n",
            "References: <root@agency.example> <parent@agency.example>\r\n",
            "Date: Tue, 1 Dec 2026 10:00:00 +0100\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n",
            "--b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n",
            "--b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour, voici le devis.\r\n",
            "--b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n",
            "<p onclick=\"x()\">Bonjour<script>alert(1)</script> <a href=\"javascript:x\">x</a></p>\r\n",
            "--b2--\r\n",
            "--b1\r\nContent-Type: application/pdf; name=\"devis.pdf\"\r\n",
            "Content-Disposition: attachment; filename=\"devis.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            "JVBERi0xLjQK\r\n--b1--\r\n"
        );
        let mail = parse(raw.as_bytes());
        assert!(!mail.parse_error);
        assert_eq!(mail.from, Some(Mailbox { name: "Renée Dupré".into(), email: "renee@client.example".into() }));
        assert_eq!(mail.to.len(), 2);
        assert_eq!(mail.subject, "Devis pour le site été");
        assert_eq!(mail.message_id, "abc@client.example");
        assert_eq!(mail.in_reply_to, "parent@agency.example");
        assert_eq!(mail.references, vec!["root@agency.example", "parent@agency.example"]);
        assert!(mail.text_body.contains("voici le devis"));
        assert!(mail.html_body.contains("Bonjour"));
        for bad in ["script", "onclick", "javascript:"] {
            assert!(!mail.html_body.contains(bad), "{bad} in {}", mail.html_body);
        }
        assert_eq!(mail.attachments.len(), 1);
        assert_eq!(mail.attachments[0].file_name, "devis.pdf");
        assert_eq!(mail.attachments[0].content_type, "application/pdf");
        assert_eq!(mail.date.map(|d| d.to_rfc3339()), Some("2026-12-01T09:00:00+00:00".into()));
    }

    #[test]
    fn garbage_is_flagged_never_a_panic() {
        for raw in [&b""[..], b"\xff\xfe\x00garbage", b"Subject: only a subject\r\n\r\nbody"] {
            let mail = parse(raw);
            assert!(mail.parse_error, "{raw:?}");
        }
    }

    #[test]
    fn built_replies_parse_back_with_their_threading_headers() {
        let out = Outgoing {
            from: Mailbox { name: "Urban Quill".into(), email: "hello@urbanquill.example".into() },
            to: vec![Mailbox { name: "Zoë".into(), email: "zoe@client.example".into() }],
            cc: vec![],
            subject: "Re: Devis été".into(),
            text_body: "Merci !".into(),
            message_id: "m1@sentra".into(),
            in_reply_to: Some("parent@client.example".into()),
            references: vec!["root@client.example".into(), "parent@client.example".into()],
            date: Utc::now(),
        };
        let mail = parse(&build(&out).unwrap_or_default());
        assert!(!mail.parse_error);
        assert_eq!(mail.subject, "Re: Devis été");
        assert_eq!(mail.to[0].name, "Zoë");
        assert_eq!(mail.in_reply_to, "parent@client.example");
        assert_eq!(mail.references, vec!["root@client.example", "parent@client.example"]);
        assert_eq!(mail.message_id, "m1@sentra");
        assert_eq!(mail.text_body.trim(), "Merci !");
    }
}
