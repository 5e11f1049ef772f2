"""Bounce and feedback reports as mail systems write them (RFC 3464, RFC 5965), built with Python's
email package, for the inbound server's tests."""

from __future__ import annotations

from email.message import Message
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText


def _fields(**values: str) -> Message:
    block = Message()
    for name, value in values.items():
        block[name.replace("_", "-")] = value
    return block


def dsn(recipient: str, action: str, status: str, diagnostic: str, original_headers: str) -> bytes:
    """A delivery status notification as Postfix sends one: text, delivery-status, original headers."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.receiver.example (Mail Delivery System)"
    report["To"] = "bounce handler"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(
        MIMEText(
            "This is the mail system at host mx.receiver.example.\n\nI'm sorry to have to inform you that your message could not be delivered.\n"
        )
    )
    status_part = Message()
    status_part.set_type("message/delivery-status")
    status_part.set_payload(
        [
            _fields(Reporting_MTA="dns; mx.receiver.example", Arrival_Date="Sun, 29 Nov 2026 10:00:00 +0000"),
            _fields(
                Final_Recipient=f"rfc822; {recipient}",
                Original_Recipient=f"rfc822;{recipient}",
                Action=action,
                Status=status,
                Remote_MTA="dns; mailbox.receiver.example",
                Diagnostic_Code=f"smtp; {diagnostic}",
            ),
        ]
    )
    report.attach(status_part)
    report.attach(MIMEText(original_headers, "rfc822-headers"))
    return report.as_bytes()


def arf(original: bytes, rcpt: str, feedback_type: str = "abuse") -> bytes:
    """An abuse report (ARF) as a feedback loop sends one: text, feedback-report, the original message."""
    from email import message_from_bytes

    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "fbl@isp.example"
    report["To"] = "fbl@bounces.example.com"
    report["Subject"] = "FW: Weekly picks"
    report.attach(
        MIMEText("This is an email abuse report for an email message received from IP 192.0.2.1.\n")
    )
    feedback = Message()
    feedback.set_type("message/feedback-report")
    feedback.set_payload(
        [
            _fields(
                Feedback_Type=feedback_type,
                User_Agent="SomeGenerator/1.0",
                Version="1",
                Original_Rcpt_To=rcpt,
            )
        ]
    )
    report.attach(feedback)
    report.attach(MIMEMessage(message_from_bytes(original)))
    return report.as_bytes()
