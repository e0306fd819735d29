"""Adapters to the registry (who is the client, who are its resellers) and the
policy (the clause text in force at a time).

Both stages were written concurrently with this one; reading them through one
small module keeps the rest of ``cases`` independent of their internals and
gives a clear error (or, for clause text, the shipped AUP wording) when they
are missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from aupguard.errors import AupguardError

# The shipped DPTgroup AUP wording per clause: used only when the policy stage
# cannot answer (not installed, or no version posted yet).
FALLBACK_CLAUSES: dict[str, str] = {
    "lawful.ip": "Transmission, distribution or storage of material protected by copyright, trademark, "
                 "trade secret, software piracy, patents or other intellectual property right without "
                 "proper authorization is prohibited.",
    "lawful.privacy": "Engaging in activity that violates privacy, publicity or other personal rights "
                      "of others is prohibited.",
    "lawful.abusive": "Material that is obscene, abusive, defamatory, harassing, or threatening language "
                      "constituting an illegal threat or violates export control laws is prohibited.",
    "lawful.exploit": "Exploitation of vulnerabilities in hardware or software for malicious purposes such "
                      "as exploitation of scripts presented on web pages is prohibited.",
    "security.scan": "Unauthorized access to or use of computers, data, systems, accounts or networks, "
                     "including any attempt to probe, scan, or test the vulnerability of a system or "
                     "network or an attempt to penetrate security measures of another individual's "
                     "system is prohibited.",
    "security.monitor": "Unauthorized monitoring of data or traffic on any network or system without "
                        "express authorization of the owner of the system or network is prohibited.",
    "security.flood": "Interference with service to any user, host or network including, without "
                      "limitation, mail-bombing, flood, deliberate attempts to overload a system and "
                      "broadcast attacks (i.e., DDOS, SYN Floods or similar attacks) is prohibited.",
    "security.forgery": "Forging of any TCP-IP packet header or any part of the header information in an "
                        "email or a newsgroup posting is prohibited.",
    "security.blacklisting": "Engaging in or permitting any network or hosting activity that results in "
                             "the blacklisting or other blockage of DPTgroup IP space is prohibited.",
    "security.cracking": "Attempting to circumvent Client authentication or security of any hosts, "
                         "network, or account ('cracking') without authorization is prohibited.",
    "security.phishing": "Simulating communications ('phishing') from and/or to a website or other "
                         "service of another entity in order to collect identity information, "
                         "authentication credentials, or other information is prohibited.",
    "security.pharming": "Using malware, DNS cache poisoning or other means ('pharming') to redirect a "
                         "user to a website or other service that simulates a legitimate service is "
                         "prohibited.",
    "security.itar": "Exporting encryption software over the Internet or otherwise in violation of ITAR, "
                     "to points outside the United States is prohibited.",
    "mail.spam": "Client is prohibited from sending unsolicited bulk and/or commercial messages over the "
                 "Internet ('spamming'), including receiving replies from unsolicited emails "
                 "('drop-box' accounts).",
    "mail.relay": "Configuring any email server in such a way that it will accept third party emails for "
                  "forwarding (i.e., open mail relay) is prohibited.",
    "mail.optin": "Bulk email may only be sent to recipients who have expressly requested receipt of "
                  "such email messages through a 'verified opt-in' process; records of every "
                  "subscription must be kept and provided to DPTgroup immediately upon request.",
    "mail.roaming-auth": "If a site has roaming users who wish to use a common mail server, the mail "
                         "server must be configured to require user identification and authorization.",
    "mail.unwanted": "The Service must not be used to send messages to any individual or entity who has "
                     "indicated that they do not wish to receive a message from you.",
    "mail.purchased-lists": "Purchasing lists of email addresses from third parties for mailing to or "
                            "from any DPTgroup hosted domain is prohibited.",
    "mail.malware": "Distributing Internet viruses, worms, Trojan horses, or information regarding the "
                    "creation of such viruses, worms, etc. for reasons other than mitigation or "
                    "prevention is prohibited.",
    "content.csam": "Using DPTgroup's network to advertise, transmit, store, post, display or otherwise "
                    "make available child pornography is prohibited. DPTgroup is required by law to "
                    "notify law enforcement agencies when it becomes aware of such material.",
    "traffic.asn-cdr": "If the traffic to and from a particular ASN exceeds 10% of client's monthly "
                       "Committed Data Rate (CDR) then DPTgroup makes no guarantee of performance "
                       "towards packet loss and/or latency to and from that ASN, including transit ASNs.",
    "general.resellers": "DPTgroup's clients who provide services to end users are responsible for such "
                         "end users' compliance with the terms of this AUP.",
    "general.changes": "DPTgroup reserves the right to modify the Policy at any time, effective upon "
                       "posting; continued use of the Services constitutes acceptance.",
    "general.complaints": "Complaints regarding prohibited use should include all applicable information "
                          "that will assist DPTgroup in investigating the complaint.",
}


@dataclass
class ClauseText:
    clause_id: str
    version: str
    text: str
    source: str  # "policy" or "shipped"


@dataclass
class Contact:
    client_id: str
    name: str
    abuse_email: str | None
    escalation_email: str | None
    emails: list[str] = field(default_factory=list)

    @property
    def notice_address(self) -> str | None:
        return self.abuse_email or (self.emails[0] if self.emails else None)


def clause_text(session: Session, clause_id: str, at: datetime) -> ClauseText:
    """The clause wording of the AUP version in force at `at`."""
    try:
        from aupguard.policy import clause_at
    except ImportError:
        clause_at = None
    if clause_at is not None:
        try:
            clause = clause_at(session, clause_id, at)
        except AupguardError:  # clause not in that version: the shipped wording below
            clause = None
        if clause is not None:
            return ClauseText(clause_id, str(getattr(clause, "version", "")), clause.text, "policy")
    text = FALLBACK_CLAUSES.get(clause_id)
    if text is None:
        raise AupguardError(f"unknown AUP clause {clause_id!r}; see `aupguard policy` for clause ids")
    return ClauseText(clause_id, "shipped", text, "shipped")


def _contact(client) -> Contact:
    return Contact(client_id=client.id, name=client.name or client.id,
                   abuse_email=getattr(client, "abuse_email", None),
                   escalation_email=getattr(client, "escalation_email", None),
                   emails=list(getattr(client, "emails", None) or []))


def reseller_chain(session: Session, client_id: str) -> list[Contact]:
    """The client first, then its reseller, and so on up the hierarchy."""
    try:
        from aupguard.registry import reseller_chain as chain
    except ImportError:
        raise AupguardError("the client registry is not installed; cannot address notices") from None
    clients = chain(session, client_id)
    if not clients:
        raise AupguardError(f"client {client_id!r} is not in the registry; add it with "
                            "`aupguard clients import` before notifying")
    return [_contact(c) for c in clients]


def client_name(session: Session, client_id: str) -> str:
    try:
        from aupguard.registry import get_client
    except ImportError:
        return client_id
    client = get_client(session, client_id)
    return (client.name or client_id) if client else client_id
