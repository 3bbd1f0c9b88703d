"""A small real SMTP server for tests, on aiosmtpd (started by scripts/smtp.sh).

Every accepted message is stored as MAIL_DIR/<n>.eml (the bytes received after
DATA, n = 1, 2, ...) with its envelope in MAIL_DIR/<n>.json:

    {"mail_from": ..., "rcpt_tos": [...], "mail_options": [...],
     "rcpt_options": [...], "helo": ..., "peer": [host, port],
     "auth_user": <login or null>, "attempt": <DATA attempt number, from 1>,
     "received_at": <unix seconds>, "size": <bytes>}

Both are written to a temporary file and renamed, the .json first: once
<n>.eml exists, both are complete.

Options:
  --auth-user U --auth-password P  advertise AUTH PLAIN and LOGIN on the plain
                                   connection and refuse mail (530) before a
                                   successful AUTH with these credentials
  --fail-first N                   answer the first N DATA commands with
                                   451 4.3.0 (transient), storing nothing
  --ready-file F                   create F once the server accepts connections

Stops on SIGTERM or SIGINT.
"""

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def write_atomically(path, data):
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, ".%s.%d.tmp" % (base, os.getpid()))
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def as_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


class Store:
    """The aiosmtpd handler: stores messages, fails the first N attempts."""

    def __init__(self, mail_dir, fail_first):
        self.mail_dir = mail_dir
        self.fail_first = fail_first
        self.attempts = 0
        existing = [int(n[:-4]) for n in os.listdir(mail_dir)
                    if n.endswith(".eml") and n[:-4].isdigit()]
        self.next = max(existing, default=0) + 1

    async def handle_DATA(self, server, session, envelope):
        self.attempts += 1
        attempt = self.attempts
        if attempt <= self.fail_first:
            log("attempt %d: 451 (failing the first %d)" % (attempt, self.fail_first))
            return "451 4.3.0 Temporary failure (test server, attempt %d of %d failing)" % (
                attempt, self.fail_first)
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        n = self.next
        self.next += 1
        auth = session.auth_data
        meta = {
            "mail_from": as_text(envelope.mail_from),
            "rcpt_tos": [as_text(r) for r in envelope.rcpt_tos],
            "mail_options": [as_text(o) for o in envelope.mail_options],
            "rcpt_options": [as_text(o) for o in envelope.rcpt_options],
            "helo": as_text(session.host_name),
            "peer": list(session.peer) if session.peer else None,
            "auth_user": as_text(auth) if auth is not None else None,
            "attempt": attempt,
            "received_at": time.time(),
            "size": len(content),
        }
        base = os.path.join(self.mail_dir, str(n))
        write_atomically(base + ".json", json.dumps(meta, indent=1).encode("utf-8") + b"\n")
        write_atomically(base + ".eml", content)
        log("attempt %d: stored %d.eml from %s to %s" % (
            attempt, n, meta["mail_from"], ", ".join(meta["rcpt_tos"])))
        return "250 2.0.0 OK stored as %d" % n


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode("utf-8")
        self.password = password.encode("utf-8")

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if (isinstance(auth_data, LoginPassword)
                and auth_data.login == self.user and auth_data.password == self.password):
            return AuthResult(success=True, auth_data=self.user.decode("utf-8"))
        log("AUTH %s refused" % mechanism)
        return AuthResult(success=False, handled=False)


def log(message):
    print("smtp_server: " + message, file=sys.stderr, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mail-dir", required=True)
    p.add_argument("--auth-user")
    p.add_argument("--auth-password")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--ready-file")
    args = p.parse_args()
    if (args.auth_user is None) != (args.auth_password is None):
        p.error("--auth-user and --auth-password go together")
    os.makedirs(args.mail_dir, exist_ok=True)
    # aiosmtpd warns, for every connection, that AUTH without TLS is unsafe
    # and that its own Session.login_data is deprecated: intended here.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    params = {"enable_SMTPUTF8": True}
    if args.auth_user is not None:
        params.update(
            authenticator=Authenticator(args.auth_user, args.auth_password),
            auth_required=True,
            # Loopback tests talk plain SMTP: allow AUTH without STARTTLS.
            auth_require_tls=False,
        )
    controller = Controller(Store(args.mail_dir, args.fail_first),
                            hostname=args.host, port=args.port, **params)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    controller.start()
    log("listening on %s:%d (auth %s, failing the first %d deliveries)" % (
        args.host, args.port, "required" if args.auth_user else "off", args.fail_first))
    if args.ready_file:
        write_atomically(args.ready_file, b"%d\n" % os.getpid())
    while not stopping.wait(3600):
        pass
    controller.stop()
    log("stopped")


if __name__ == "__main__":
    main()
