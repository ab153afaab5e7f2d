"""Run one vendor emulator in the foreground, for demos and manual testing.

    python -m tests.fakes --vendor hubspot --port 8101
    python -m tests.fakes --vendor mailchimp --port 8102 --rate-limit 10/1
    python -m tests.fakes --vendor marketo --port 8103
    python -m tests.fakes --vendor constantcontact --port 8104
    python -m tests.fakes --vendor consent --port 8110   # the consent service (MKT_CONSENT_URL)

It prints the URL and the credential to use, serves until Ctrl-C, then prints how many requests
it saw and every shape violation.
"""

from __future__ import annotations

import argparse
import sys
import threading

from tests.fakes.base import FakeVendor
from tests.fakes.consent import FakeConsentService
from tests.fakes.constantcontact import NEWSLETTER_LIST_ID, FakeConstantContact
from tests.fakes.hubspot import FakeHubSpot
from tests.fakes.mailchimp import DEFAULT_LIST, FakeMailchimp
from tests.fakes.marketo import MUNCHKIN_ID, FakeMarketo
from tests.fakes.pardot import BUSINESS_UNIT_ID, FakePardot

VENDORS: dict[str, type[FakeVendor]] = {
    "hubspot": FakeHubSpot,
    "mailchimp": FakeMailchimp,
    "consent": FakeConsentService,
    "marketo": FakeMarketo,
    "pardot": FakePardot,
    "constantcontact": FakeConstantContact,
}


def _rate_limit(text: str) -> tuple[int, float]:
    try:
        count, seconds = text.split("/", 1)
        return int(count), float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError("use N/SECONDS, e.g. 100/10") from None


def describe(fake: FakeVendor) -> list[str]:
    """What a client needs to reach ``fake``."""
    if isinstance(fake, FakeMarketo):
        return [
            f"Marketo emulator on {fake.url}  (REST {fake.url}/rest, identity {fake.url}/identity)",
            f"  auth: client credentials {fake.client_id} / {fake.credential}",
            f'  connection config: {{"munchkin_id": "{MUNCHKIN_ID}"}}',
        ]
    if isinstance(fake, FakeConstantContact):
        return [
            f"Constant Contact emulator on {fake.url}  (API root {fake.base_url}, OAuth "
            f"{fake.url}/oauth2/default/v1)",
            f"  auth: OAuth app {fake.oauth.client_id} / {fake.oauth.client_secret} (HTTP Basic "
            f"at the token endpoint, PKCE); refresh token {fake.credential} (rotates)",
            f"  lists: Newsletter {NEWSLETTER_LIST_ID}; 4 requests/s enforced",
        ]
    if isinstance(fake, FakeConsentService):
        return [
            f"Consent service emulator on {fake.url}  (MKT_CONSENT_URL={fake.url})",
            f"  auth: Authorization: Bearer {fake.credential}  (MKT_CONSENT_TOKEN)",
            "  subjects are 'unknown' until POST /v1/consent/records sets them",
            "  contract: docs/consent-service.openapi.yaml",
        ]
    if isinstance(fake, FakeMailchimp):
        return [
            f"Mailchimp emulator on {fake.url}  (API root {fake.base_url})",
            f"  auth: HTTP Basic, any username, password {fake.credential}",
            f"  default list: {DEFAULT_LIST}",
        ]
    if isinstance(fake, FakePardot):
        return [
            f"Account Engagement (Pardot) emulator on {fake.url}  (OAuth and API)",
            f"  auth: Salesforce OAuth, refresh token {fake.credential} (scope pardot_api)",
            f"  business unit: Pardot-Business-Unit-Id {BUSINESS_UNIT_ID}",
            "  objects: prospects (do/upsertLatestByEmail, query by email, delete), custom-fields",
        ]
    return [
        f"HubSpot emulator on {fake.url}",
        f"  auth: Authorization: Bearer {fake.credential}",
        "  objects: companies, contacts (batch/upsert, batch/read, batch/archive, properties)",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__)
    parser.add_argument("--vendor", choices=sorted(VENDORS), required=True)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--rate-limit", type=_rate_limit, metavar="N/SECONDS")
    args = parser.parse_args(argv)

    fake = VENDORS[args.vendor](host=args.host, port=args.port)
    if args.rate_limit:
        fake.set_rate_limit(*args.rate_limit)
    fake.start()
    print("\n".join([*describe(fake), "Ctrl-C stops it."]), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    violations = fake.violations
    print(f"\nstopped after {len(fake.requests)} requests; {len(violations)} violations")
    for violation in violations:
        print(f"  - {violation}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
