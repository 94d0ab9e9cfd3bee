"""An SMTP server for the e-mail tests (aiosmtpd): STARTTLS required, AUTH PLAIN/LOGIN
required after it, one user. Each message taken is appended to a JSON-lines file with its
envelope, its Subject and its text/plain and text/html parts decoded.

Usage: smtp_sink.py PORT CERT KEY USER PASSWORD OUT_FILE
Prints "ready" once it listens on 127.0.0.1:PORT, then runs until killed.
"""

import json
import ssl
import sys
import time
import logging
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def who(auth_data) -> str:
    """The authenticated user, as the authenticator recorded it."""
    if isinstance(auth_data, bytes):
        return auth_data.decode()
    return "" if auth_data is None else str(auth_data)


def main() -> None:
    # aiosmtpd itself still sets its deprecated Session.login_data, and logs that it did.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    port, cert, key, user, password, out = sys.argv[1:7]

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            msg = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
            plain = msg.get_body(preferencelist=("plain",))
            html = msg.get_body(preferencelist=("html",))
            record = {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(msg["subject"]),
                "plain": plain.get_content() if plain else "",
                "html": html.get_content() if html else "",
                "tls": session.ssl is not None,
                "user": who(session.auth_data),
            }
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            return "250 Message accepted for delivery"

    def authenticator(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password:
            return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=int(port),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=True,
    )
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
