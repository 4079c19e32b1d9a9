//! Mail bodies: plain text and HTML for each kind of message, compiled in and
//! replaceable file by file from `email.templates_dir`. A template holds
//! placeholders (`{{product}}`, `{{link}}`, `{{expires}}`) filled in one pass,
//! so a value can never introduce a placeholder of its own; values are
//! HTML-escaped in HTML bodies. No images, no tracking: a message carries its
//! link and nothing that reports back when it is opened.

use std::path::Path;

/// The kinds of mail latchkey sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// A link that verifies the address.
    VerifyEmail,
    /// A link that sets a new password.
    ResetPassword,
    /// A notice that the password changed.
    PasswordChanged,
}

impl MailKind {
    const ALL: [Self; 3] = [
        Self::VerifyEmail,
        Self::ResetPassword,
        Self::PasswordChanged,
    ];

    /// The file name stem of its templates.
    pub fn name(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::PasswordChanged => "password_changed",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::VerifyEmail => 0,
            Self::ResetPassword => 1,
            Self::PasswordChanged => 2,
        }
    }

    fn builtin(self) -> (&'static str, &'static str) {
        match self {
            Self::VerifyEmail => (
                include_str!("builtin/verify_email.txt"),
                include_str!("builtin/verify_email.html"),
            ),
            Self::ResetPassword => (
                include_str!("builtin/reset_password.txt"),
                include_str!("builtin/reset_password.html"),
            ),
            Self::PasswordChanged => (
                include_str!("builtin/password_changed.txt"),
                include_str!("builtin/password_changed.html"),
            ),
        }
    }

    fn subject(self, product: &str) -> String {
        match self {
            Self::VerifyEmail => format!("Confirm your {product} email address"),
            Self::ResetPassword => format!("Reset your {product} password"),
            Self::PasswordChanged => format!("Your {product} password was changed"),
        }
    }
}

/// A rendered message: subject, plain text, HTML.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Fixed per kind, with the product name; no template file changes it.
    pub subject: String,
    /// The values are filled in as they are.
    pub text: String,
    /// The values are filled in HTML-escaped.
    pub html: String,
}

/// The templates in use: the built-in ones, each replaced by a file of the
/// same name when the folder has one.
#[derive(Debug, Clone)]
pub struct Templates {
    bodies: Vec<(String, String)>,
}

impl Default for Templates {
    fn default() -> Self {
        Self {
            bodies: MailKind::ALL
                .iter()
                .map(|k| {
                    let (t, h) = k.builtin();
                    (t.to_owned(), h.to_owned())
                })
                .collect(),
        }
    }
}

impl Templates {
    /// The built-in templates with `dir`'s files laid over them. A missing
    /// folder or file keeps the built-in template.
    ///
    /// # Errors
    /// A template file exists but cannot be read as UTF-8 text.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let mut templates = Self::default();
        for kind in MailKind::ALL {
            let slot = &mut templates.bodies[kind.index()];
            for (ext, body) in [("txt", &mut slot.0), ("html", &mut slot.1)] {
                let path = dir.join(format!("{}.{ext}", kind.name()));
                match std::fs::read_to_string(&path) {
                    Ok(text) => *body = text,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(templates)
    }

    /// Renders `kind` for `product`, with `link` (empty for a notice) and
    /// the link's lifetime in words.
    pub fn render(&self, kind: MailKind, product: &str, link: &str, expires: &str) -> Rendered {
        let (text, html) = &self.bodies[kind.index()];
        let values = |name: &str| match name {
            "product" => Some(product),
            "link" => Some(link),
            "expires" => Some(expires),
            _ => None,
        };
        Rendered {
            subject: kind.subject(product),
            text: fill(text, &values, false),
            html: fill(html, &values, true),
        }
    }
}

/// Replaces each `{{name}}` of `template` once, left to right; an unknown
/// name is left as written.
fn fill<'a>(template: &str, values: &dyn Fn(&str) -> Option<&'a str>, html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after
            .find("}}")
            .and_then(|end| Some((end, values(after[..end].trim())?)))
        {
            Some((end, value)) => {
                if html {
                    out.push_str(&escape_html(value));
                } else {
                    out.push_str(value);
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for an HTML element or a quoted attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A lifetime in words: "30 minutes", "24 hours", "2 days".
pub fn lifetime_words(secs: i64) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if secs % 86_400 == 0 && secs > 86_400 {
        plural(secs / 86_400, "day")
    } else if secs % 3600 == 0 {
        plural(secs / 3600, "hour")
    } else if secs % 60 == 0 {
        plural(secs / 60, "minute")
    } else {
        plural(secs, "second")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_link_in_both_bodies_and_escapes_html() {
        let t = Templates::default();
        let r = t.render(
            MailKind::ResetPassword,
            "Acme <Auth>",
            "https://auth.example.com/reset-password?token=abc&x=1",
            "30 minutes",
        );
        assert_eq!(r.subject, "Reset your Acme <Auth> password");
        assert!(r
            .text
            .contains("https://auth.example.com/reset-password?token=abc&x=1"));
        assert!(r
            .html
            .contains("href=\"https://auth.example.com/reset-password?token=abc&amp;x=1\""));
        assert!(r.html.contains("Acme &lt;Auth&gt;"));
        assert!(!r.html.contains("<img"), "no tracking pixels");
    }

    #[test]
    fn a_value_cannot_inject_a_placeholder() {
        let t = Templates::default();
        let r = t.render(MailKind::VerifyEmail, "{{link}}", "https://x/l", "1 day");
        assert!(r.text.contains("your {{link}} account"));
    }

    #[test]
    fn files_in_the_folder_replace_builtin_templates() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("verify_email.txt"), "Go to {{ link }} now").expect("write");
        let t = Templates::load(dir.path()).expect("load");
        let r = t.render(MailKind::VerifyEmail, "p", "L", "1 day");
        assert_eq!(r.text, "Go to L now");
        assert!(r.html.contains("href=\"L\""), "the HTML stays built in");
    }

    #[test]
    fn lifetimes_read_as_words() {
        assert_eq!(lifetime_words(1800), "30 minutes");
        assert_eq!(lifetime_words(86_400), "24 hours");
        assert_eq!(lifetime_words(172_800), "2 days");
        assert_eq!(lifetime_words(61), "61 seconds");
    }
}
