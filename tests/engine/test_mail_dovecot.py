"""`deskflow mail-in --imap` against Debian's Dovecot (`dovecot-imapd`) over TLS on 127.0.0.1.

One private Dovecot per module, started as a subprocess with its own configuration in a
temporary folder: IMAPS only, on a free loopback port, a self-signed certificate made here
with `openssl` (the command trusts it through SSL_CERT_FILE, so the real certificate check
runs), a passwd-file user and a Maildir. No system service is used or needed. Without
`dovecot` the test skips, except under CI=true, where it fails (tests/missing.py).
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.models import Attachment, MailReceipt, Request
from tests.missing import missing
from tests.stored import reload
from web.cli import main

MAIL = Path(__file__).resolve().parent.parent / "data" / "mail"
SBIN = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/sbin"))
USER, PASSWORD = "helpdesk", "s3cret-imap"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa75\x81"
       b"\x84\x00\x00\x00\x00IEND\xaeB`\x82")


@dataclass(frozen=True, slots=True)
class Dovecot:
    port: int
    cafile: Path

    def connect(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=str(self.cafile))
        conn = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=context, timeout=10)
        conn.login(USER, PASSWORD)
        return conn

    def new_folder(self, *messages: bytes) -> str:
        """A new mailbox holding `messages` (APPEND), so each test starts empty."""
        folder = f"t{uuid.uuid4().hex[:12]}"
        conn = self.connect()
        try:
            assert conn.create(folder)[0] == "OK"
            for raw in messages:
                assert conn.append(folder, None, None, raw)[0] == "OK"
        finally:
            conn.logout()
        return folder

    def seen(self, folder: str) -> list[bool]:
        conn = self.connect()
        try:
            conn.select(folder, readonly=True)
            _, data = conn.fetch("1:*", "(FLAGS)")
        finally:
            conn.logout()
        return [b"\\Seen" in line for line in data if isinstance(line, bytes)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group(user: str) -> str:
    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


def _config(home: Path, port: int) -> str:
    """Dovecot 2.3 with nothing of /etc/dovecot: run by this user, or by root with Debian's
    `dovecot`/`dovenull` users (Dovecot refuses root for login and mail processes)."""
    root = os.geteuid() == 0
    me = pwd.getpwuid(os.geteuid()).pw_name
    internal, login, mail_user = ("dovecot", "dovenull", "dovecot") if root else (me, me, me)
    auth_as_root = "service auth {\n  user = root\n}\n" if root else ""
    return f"""\
base_dir = {home}/run
state_dir = {home}/state
instance_name = deskflow-test-{port}
log_path = {home}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{home}/cert.pem
ssl_key = <{home}/key.pem
default_internal_user = {internal}
default_internal_group = {_group(internal)}
default_login_user = {login}
mail_uid = {mail_user}
mail_gid = {_group(mail_user)}
first_valid_uid = {pwd.getpwnam(mail_user).pw_uid}
first_valid_gid = {pwd.getpwnam(mail_user).pw_gid}
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {home}/passwd
}}
userdb {{
  driver = passwd-file
  args = {home}/passwd
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
{auth_as_root}"""


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    binary = shutil.which("dovecot", path=SBIN)
    if binary is None:
        missing("dovecot is not installed: install Debian's dovecot-imapd "
                "(apt-get install dovecot-imapd)", "Dovecot IMAP test")
    if shutil.which("openssl") is None:
        missing("openssl is not installed (it makes the test's certificate)", "Dovecot IMAP test")
    # a short path (unix sockets) that Dovecot's unprivileged processes can reach
    home = Path(tempfile.mkdtemp(prefix="deskflow-dovecot-"))
    process = None
    try:
        home.chmod(0o755)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(home / "key.pem"), "-out", str(home / "cert.pem")],
                       check=True, capture_output=True, timeout=60)
        (home / "mail").mkdir()
        (home / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::{home}/mail/{USER}::\n")
        if os.geteuid() == 0:
            user = pwd.getpwnam("dovecot")
            os.chown(home / "mail", user.pw_uid, user.pw_gid)
        port = _free_port()
        (home / "dovecot.conf").write_text(_config(home, port))
        process = subprocess.Popen([binary, "-F", "-c", str(home / "dovecot.conf")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        server = Dovecot(port, home / "cert.pem")
        deadline = time.monotonic() + 15
        while True:
            try:
                server.connect().logout()
                break
            except (OSError, imaplib.IMAP4.error) as exc:
                log = (home / "dovecot.log").read_text() if (home / "dovecot.log").exists() else ""
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"dovecot did not start ({exc}):\n{log}")
                time.sleep(0.2)
        yield server
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def _with_screenshot() -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = "Bob Bakker <bob.bakker@acme.example>", "helpdesk@acme.example"
    msg["Subject"], msg["Message-ID"] = "Error on the badge reader", "<dovecot-2@acme.example>"
    msg.set_content("The badge reader at the main entrance shows an error; photo attached.")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="reader.png")
    return msg.as_bytes()


def test_mail_in_polls_dovecot_over_tls_and_handles_each_message_once(
        runner, db_url, service, sessions, acme_path, dovecot, monkeypatch, tmp_path):
    folder = dovecot.new_folder((MAIL / "new_incident.eml").read_bytes(), _with_screenshot())
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.cafile))  # the system store, plus ours
    monkeypatch.setenv("DESKFLOW_ATTACHMENTS_DIR", str(tmp_path / "files"))
    args = ["mail-in", "--db", db_url, "--catalog", str(acme_path), "--once", "--imap",
            f"imaps://{USER}:{PASSWORD}@127.0.0.1:{dovecot.port}/{folder}"]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert first.stderr.splitlines() == [
        "deskflow mail-in: opened REQ-000001 from alice.jansen@acme.example "
        "(<CAF7x1Qm9Vh2kq@mail.acme.example>)",
        "deskflow mail-in: opened REQ-000002 from bob.bakker@acme.example "
        "(<dovecot-2@acme.example>); attachments: 1 kept"]
    assert reload(sessions, "REQ-000001").channel == "email"
    assert dovecot.seen(folder) == [True, True]

    second = runner.invoke(main, args)
    assert (second.exit_code, second.stderr) == (0, "")
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Request)) == 2
        assert s.scalar(select(func.count()).select_from(MailReceipt)) == 2
        assert s.scalars(select(Attachment.filename)).all() == ["reader.png"]
    assert (tmp_path / "files").is_dir()


def test_a_certificate_the_system_does_not_trust_is_refused(runner, db_url, acme_path, dovecot,
                                                            monkeypatch, tmp_path):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    result = runner.invoke(main, [
        "mail-in", "--db", db_url, "--catalog", str(acme_path), "--once", "--imap",
        f"imaps://{USER}:{PASSWORD}@127.0.0.1:{dovecot.port}/INBOX"])
    assert result.exit_code == 65
    assert result.stderr.startswith(f"deskflow: cannot reach 127.0.0.1:{dovecot.port}: ")
