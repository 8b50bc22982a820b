"""A real SMTP server on loopback for the alert tests (aiosmtpd).

Usage: python smtp_sink.py PORT [USER PASSWORD]
Prints "ready" once it accepts connections, then one JSON line per message received:
envelope sender and recipients, the login used, and the decoded subject, text and HTML parts.
With USER and PASSWORD it advertises AUTH (without requiring TLS: loopback only) and refuses
other credentials.
"""
import asyncio
import email
import email.policy
import json
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

PORT = int(sys.argv[1])
CREDENTIALS = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else None


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        text = msg.get_body(("plain",))
        html = msg.get_body(("html",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": getattr(session, "cased_login", None),
            "subject": str(msg["subject"]),
            "to": str(msg["to"]),
            "notification_id": msg["x-cased-notification-id"],
            "content_type": msg.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        print(json.dumps(record), flush=True)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and CREDENTIALS is not None
        and (auth_data.login.decode(), auth_data.password.decode()) == CREDENTIALS
    )
    if ok:
        session.cased_login = auth_data.login.decode()
    return AuthResult(success=ok, handled=False)


def main():
    kwargs = {}
    if CREDENTIALS:
        kwargs = {"authenticator": authenticator, "auth_require_tls": False}
    controller = Controller(Handler(), hostname="127.0.0.1", port=PORT, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # runs until the test closes our stdin (or dies)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
