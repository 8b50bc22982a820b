//! The email channel: SMTP with `lettre` over tokio and rustls (STARTTLS, implicit TLS, or plain
//! for local relays), optional authentication, a text and an HTML part. The password is a
//! [`crate::Secret`]: never in `Debug`, logs or errors.

use std::fmt;
use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{EmailChannelConfig, SmtpTls, resolve_secret};
use super::notifier::Notifier;
use super::notifier::NotifyError;
use super::{AlertState, Notification};
use crate::error::{Problems, Result};

/// Sends notifications by email.
#[derive(Clone)]
pub struct EmailNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    host: String,
    port: u16,
    tls: SmtpTls,
    username: Option<String>,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject_prefix: String,
}

impl fmt::Debug for EmailNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailNotifier")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.username.as_ref().map(|_| "[redacted]"))
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl EmailNotifier {
    /// A notifier from a channel's configuration; `timeout` bounds each SMTP command.
    ///
    /// # Errors
    /// [`Error::Validation`] naming every bad setting (fields relative to the channel): bad
    /// addresses, an unset `password_env`, a TLS setup that cannot be made.
    pub fn from_config(c: &EmailChannelConfig, timeout: Duration) -> Result<Self> {
        let mut p = Problems::default();
        let from = c
            .from
            .parse::<Mailbox>()
            .map_err(|_| p.add("from", format!("{:?} is not an email address", c.from)))
            .ok();
        let mut to = Vec::new();
        for (i, t) in c.to.iter().enumerate() {
            match t.parse::<Mailbox>() {
                Ok(m) => to.push(m),
                Err(_) => p.add(format!("to[{i}]"), format!("{t:?} is not an email address")),
            }
        }
        if to.is_empty() && !p.has("to[0]") {
            p.add("to", "must name at least one recipient");
        }
        let password = match (
            &c.username,
            c.password.is_some() || c.password_env.is_some(),
        ) {
            (Some(_), true) => {
                match resolve_secret(c.password.as_ref(), c.password_env.as_deref(), "password") {
                    Ok(s) => Some(s),
                    Err(e) => {
                        p.extend_from(&e);
                        None
                    }
                }
            }
            (None, false) => None,
            _ => {
                p.add(
                    "username",
                    "username and password (or password_env) go together",
                );
                None
            }
        };
        let port = c.port.unwrap_or(match c.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        });
        let tls = match c.tls {
            SmtpTls::None => Some(Tls::None),
            SmtpTls::Starttls | SmtpTls::Tls => match TlsParameters::new(c.host.clone()) {
                Ok(params) => Some(if c.tls == SmtpTls::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }),
                Err(e) => {
                    p.add("tls", format!("cannot set up TLS for {:?}: {e}", c.host));
                    None
                }
            },
        };
        p.finish("email channel")?;
        let (Some(from), Some(tls)) = (from, tls) else {
            unreachable!("problems were reported above")
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(c.host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if let (Some(user), Some(password)) = (&c.username, &password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(Self {
            transport: builder.build(),
            host: c.host.clone(),
            port,
            tls: c.tls,
            username: c.username.clone(),
            from,
            to,
            subject_prefix: c.subject_prefix.clone(),
        })
    }

    /// A notifier for a local relay without TLS or authentication (tests, sidecars).
    ///
    /// # Errors
    /// As [`EmailNotifier::from_config`].
    pub fn plain(host: &str, port: u16, from: &str, to: &[&str]) -> Result<Self> {
        Self::from_config(
            &EmailChannelConfig {
                name: "email".into(),
                host: host.into(),
                port: Some(port),
                tls: SmtpTls::None,
                username: None,
                password: None,
                password_env: None,
                from: from.into(),
                to: to.iter().map(|s| (*s).to_owned()).collect(),
                subject_prefix: "[cased]".into(),
                send_resolved: false,
                delivery: None,
            },
            Duration::from_secs(30),
        )
    }

    fn message(&self, n: &Notification) -> std::result::Result<Message, NotifyError> {
        let subject = format!("{} {}", self.subject_prefix, n.headline())
            .trim()
            .to_owned();
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(format!("<{}@cased.alerts>", n.id)))
            .header(NotificationIdHeader(n.id.clone()));
        for t in &self.to {
            b = b.to(t.clone());
        }
        b.multipart(MultiPart::alternative_plain_html(
            text_body(n),
            html_body(n),
        ))
        .map_err(|e| NotifyError::permanent(format!("cannot build the email: {e}")))
    }
}

#[async_trait::async_trait]
impl Notifier for EmailNotifier {
    async fn notify(&self, n: &Notification) -> std::result::Result<(), NotifyError> {
        let message = self.message(n)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = format!("SMTP {}:{}: {}", self.host, self.port, error_chain(&e));
                if e.is_permanent() {
                    Err(NotifyError::permanent(text))
                } else {
                    Err(NotifyError::retryable(text))
                }
            }
        }
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        source = s.source();
    }
    out
}

/// `X-Cased-Notification-Id`: the same on every retry, for receivers that drop duplicates.
#[derive(Debug, Clone)]
struct NotificationIdHeader(String);

impl Header for NotificationIdHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Cased-Notification-Id")
    }
    fn parse(s: &str) -> std::result::Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_owned()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

fn deployment_lines(n: &Notification) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(d) = &n.deployment {
        v.push(("Deployment", d.deployment_request.clone()));
        for (k, val) in [
            ("Repository", &d.repository),
            ("Environment", &d.environment),
            ("Commit", &d.commit_sha),
            ("Ref", &d.git_ref),
            ("Link", &d.external_url),
        ] {
            if let Some(val) = val {
                v.push((k, val.clone()));
            }
        }
    }
    if let Some(c) = &n.correlation_id {
        v.push(("Correlation id", c.clone()));
    }
    v.push(("Notification id", n.id.clone()));
    v
}

fn state_label(a: &super::Alert) -> String {
    if a.state == AlertState::Resolved {
        "RESOLVED".into()
    } else {
        a.severity.as_str().to_uppercase()
    }
}

/// The text part.
fn text_body(n: &Notification) -> String {
    let mut out = format!("{}\n\n", n.headline());
    for a in &n.alerts {
        out.push_str(&format!("- [{}] {}\n", state_label(a), a.title));
        if !a.summary.is_empty() {
            out.push_str(&format!("  {}\n", a.summary));
        }
        for f in &a.findings {
            out.push_str(&format!(
                "  * {} ({}, {}): {}\n",
                f.metric, f.detector, f.severity, f.message
            ));
        }
    }
    if n.omitted > 0 {
        out.push_str(&format!(
            "- ...and {} more: {}\n",
            n.omitted,
            n.omitted_keys.join(", ")
        ));
    }
    out.push('\n');
    for (k, v) in deployment_lines(n) {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The HTML part (inline styles only, as mail clients want).
fn html_body(n: &Notification) -> String {
    let colour = match (n.status, n.severity) {
        (AlertState::Resolved, _) => "#2EB67D",
        (_, crate::Severity::Info) => "#439FE0",
        (_, crate::Severity::Warning) => "#DAA038",
        (_, crate::Severity::Critical) => "#D40E0D",
        (_, crate::Severity::Emergency) => "#7A0019",
    };
    let mut out = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2 style=\"border-left:6px solid {colour};padding-left:8px\">{}</h2><ul>",
        html_escape(&n.headline())
    );
    for a in &n.alerts {
        out.push_str(&format!(
            "<li><strong>{}</strong> {}",
            state_label(a),
            html_escape(&a.title)
        ));
        if !a.summary.is_empty() {
            out.push_str(&format!("<br>{}", html_escape(&a.summary)));
        }
        if !a.findings.is_empty() {
            out.push_str("<ul>");
            for f in &a.findings {
                out.push_str(&format!(
                    "<li><code>{}</code> ({}, {}): {}</li>",
                    html_escape(&f.metric),
                    html_escape(&f.detector),
                    f.severity,
                    html_escape(&f.message)
                ));
            }
            out.push_str("</ul>");
        }
        out.push_str("</li>");
    }
    if n.omitted > 0 {
        out.push_str(&format!("<li>…and {} more</li>", n.omitted));
    }
    out.push_str("</ul><table>");
    for (k, v) in deployment_lines(n) {
        let v = if k == "Link" {
            format!("<a href=\"{0}\">{0}</a>", html_escape(&v))
        } else {
            html_escape(&v)
        };
        out.push_str(&format!("<tr><th align=\"left\">{k}</th><td>{v}</td></tr>"));
    }
    out.push_str("</table></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn debug_hides_the_password_and_the_html_is_escaped() {
        let c = EmailChannelConfig {
            name: "m".into(),
            host: "smtp.example.com".into(),
            port: None,
            tls: SmtpTls::Starttls,
            username: Some("alerts".into()),
            password: Some(Secret::new("pa55-w0rd")),
            password_env: None,
            from: "cased <alerts@example.com>".into(),
            to: vec!["oncall@example.com".into()],
            subject_prefix: "[cased]".into(),
            send_resolved: false,
            delivery: None,
        };
        let n = EmailNotifier::from_config(&c, Duration::from_secs(5)).unwrap();
        let d = format!("{n:?}");
        assert!(
            !d.contains("pa55-w0rd") && d.contains("[redacted]") && d.contains("587"),
            "{d}"
        );
        let a = super::super::Alert::builder(crate::Severity::Warning, "<script>")
            .correlation_id("c")
            .build()
            .unwrap();
        let note = Notification::new("id1".into(), "r", "c", vec![std::sync::Arc::new(a)], 10);
        assert!(
            html_body(&note).contains("&lt;script&gt;") && !html_body(&note).contains("<script>")
        );
        assert!(text_body(&note).contains("- [WARNING] <script>"));
    }

    #[test]
    fn bad_addresses_are_named() {
        let e = EmailNotifier::plain("127.0.0.1", 25, "nobody", &["a@b.c", "bad"]).unwrap_err();
        let fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["from", "to[1]"]);
    }
}
