"""An email provider for the fault tests, loaded by the worker processes (EMAIL_BACKEND).

Every message it is handed becomes one JSON line in the file named by
MISSIONHUB_FAULTS_MAILBOX: `delivered`, or `refused` while the file named by
MISSIONHUB_FAULTS_MAIL_DOWN exists (the provider is down: the send raises
ConnectionRefusedError, a passing failure). Lines are appended with one `write` on an
O_APPEND file, so several workers can share the mailbox. MISSIONHUB_FAULTS_MAIL_DELAY
(seconds) slows each delivery, so that two senders overlap. After delivering to the
address MISSIONHUB_FAULTS_MAIL_HANG_AFTER the send does not return (the provider took the
message; its answer never comes back), so the test can kill the sender right there.
"""

import json
import os
import time
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


def _append(path: str, record: dict) -> None:
    line = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class RecordingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        mailbox = os.environ["MISSIONHUB_FAULTS_MAILBOX"]
        down = os.environ.get("MISSIONHUB_FAULTS_MAIL_DOWN", "")
        delay = float(os.environ.get("MISSIONHUB_FAULTS_MAIL_DELAY", "0"))
        for message in email_messages:
            record = {"to": message.to, "subject": message.subject, "pid": os.getpid()}
            if down and Path(down).exists():
                _append(mailbox, {**record, "outcome": "refused"})
                raise ConnectionRefusedError("the email provider is down")
            time.sleep(delay)
            _append(mailbox, {**record, "outcome": "delivered"})
            if message.to == [os.environ.get("MISSIONHUB_FAULTS_MAIL_HANG_AFTER")]:
                time.sleep(3600)
        return len(email_messages)
