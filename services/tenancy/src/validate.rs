//! Boundary validation: raw request strings in, normalised domain values (or a field error) out.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::error::TenancyError;

type Result<T> = std::result::Result<T, TenancyError>;

/// Trimmed, non-empty text of at most `max` characters.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(TenancyError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(TenancyError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(value.to_owned())
}

/// An email address, lower-cased.
pub fn email(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim().to_lowercase();
    let valid = value.len() <= 254
        && !value.chars().any(char::is_whitespace)
        && value
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.contains('@') && hostname(domain).is_some());
    if valid { Ok(value) } else { Err(TenancyError::invalid(field, "must be an email address")) }
}

/// A host name as a brand domain: lower-cased, a trailing dot and a port removed.
pub fn domain(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim().to_lowercase();
    let value = strip_port(&value).trim_end_matches('.');
    hostname(value).ok_or_else(|| TenancyError::invalid(field, "must be a host name such as app.example.com"))
}

/// `host` without a `:port` suffix.
pub fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// RFC 1123 host name with at least two labels and a non-numeric top-level label.
fn hostname(value: &str) -> Option<String> {
    if value.is_empty() || value.len() > 253 {
        return None;
    }
    let labels: Vec<&str> = value.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld_ok = labels.last().is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_lowercase()));
    (labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok).then(|| value.to_owned())
}

/// A password strong enough to keep: 10 to 128 characters, letters and digits, not a known one.
pub fn password(field: &'static str, value: &str) -> Result<String> {
    const COMMON: &[&str] = &["password123", "password1234", "1234567890a", "qwerty12345", "letmein1234"];
    let length = value.chars().count();
    if length < 10 {
        return Err(TenancyError::invalid(field, "must be at least 10 characters"));
    }
    if length > 128 {
        return Err(TenancyError::invalid(field, "must be at most 128 characters"));
    }
    if !value.chars().any(char::is_alphabetic) || !value.chars().any(|c| c.is_ascii_digit()) {
        return Err(TenancyError::invalid(field, "must contain letters and digits"));
    }
    if COMMON.contains(&value.to_lowercase().as_str()) {
        return Err(TenancyError::invalid(field, "is too common"));
    }
    Ok(value.to_owned())
}

/// A UUID in its text form.
pub fn id(field: &'static str, value: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| TenancyError::invalid(field, "must be a UUID"))
}

/// `#RRGGBB`, or empty.
pub fn color(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim();
    let ok = value.is_empty()
        || (value.len() == 7 && value.starts_with('#') && value[1..].bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(TenancyError::invalid(field, "must be a colour such as #1a2b3c"))
    }
}

/// An `https://` URL, or empty.
pub fn https_url(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim();
    let ok = value.is_empty()
        || (value.starts_with("https://") && value.len() <= 2048 && !value.chars().any(char::is_whitespace));
    if ok { Ok(value.to_owned()) } else { Err(TenancyError::invalid(field, "must be an https:// URL")) }
}

/// An email address, or empty.
pub fn optional_email(field: &'static str, value: &str) -> Result<String> {
    if value.trim().is_empty() { Ok(String::new()) } else { email(field, value) }
}

/// An ISO-4217 alphabetic code (three upper-case letters).
pub fn currency(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim().to_ascii_uppercase();
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(value)
    } else {
        Err(TenancyError::invalid(field, "must be an ISO-4217 currency code such as EUR"))
    }
}

/// An IANA time zone name such as `Europe/Berlin` or `UTC`.
pub fn time_zone(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim();
    let part_ok =
        |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+'));
    if !value.is_empty() && value.len() <= 64 && value.split('/').all(part_ok) {
        Ok(value.to_owned())
    } else {
        Err(TenancyError::invalid(field, "must be an IANA time zone such as Europe/Berlin"))
    }
}

/// An invoice number prefix: 1 to 10 upper-case letters or digits.
pub fn invoice_prefix(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim().to_ascii_uppercase();
    if !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        Ok(value)
    } else {
        Err(TenancyError::invalid(field, "must be 1 to 10 letters or digits"))
    }
}

/// Page size: 0 means the default (50), larger than 200 is capped, negative is an error.
pub fn page_size(value: i32) -> Result<i64> {
    sentra_runtime::wire::page_size(value).ok_or_else(|| TenancyError::invalid("page_size", "must not be negative"))
}

/// Opaque keyset cursor: the sort key and id of the last item of the previous page.
pub fn encode_page_token(key: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{id}\n{key}"))
}

/// Decodes a token made by [`encode_page_token`]; empty means the first page.
pub fn page_token(value: &str) -> Result<Option<(String, Uuid)>> {
    if value.is_empty() {
        return Ok(None);
    }
    let bad = || TenancyError::invalid("page_token", "is not a token from a previous page");
    let raw = URL_SAFE_NO_PAD.decode(value).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, key) = text.split_once('\n').ok_or_else(bad)?;
    Ok(Some((key.to_owned(), Uuid::parse_str(id).map_err(|_| bad())?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(domain("d", " App.UrbanQuill.com:443 ").unwrap(), "app.urbanquill.com");
        assert_eq!(domain("d", "portal.example.co.uk.").unwrap(), "portal.example.co.uk");
        for bad in ["", "localhost", "-bad.com", "bad-.com", "a..b.com", "under_score.com", "1.2.3.4", "spa ce.com"] {
            assert!(domain("d", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords_need_length_letters_and_digits() {
        assert!(password("p", "correct horse 42").is_ok());
        assert!(password("p", "short1").is_err());
        assert!(password("p", "onlyletterslong").is_err());
        assert!(password("p", "Password123").is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_reject_junk() {
        let id = Uuid::new_v4();
        let token = encode_page_token("Acme\nBrand", id);
        assert_eq!(page_token(&token).unwrap(), Some(("Acme\nBrand".to_owned(), id)));
        assert!(page_token("%%%").is_err());
        assert_eq!(page_size(-1).unwrap_err().to_string(), "page_size: must not be negative");
        assert_eq!(page_size(0).unwrap(), 50);
        assert_eq!(page_size(10_000).unwrap(), 200);
    }
}
