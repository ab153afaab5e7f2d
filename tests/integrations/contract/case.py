"""``Contract``: one vendor object under test, its emulator and connection, in the suite's words.

The tests speak of records of our data (source rows) and of what the destination holds for
them; the profile (profiles/<vendor>.py) translates both to the vendor's terms.
"""

from __future__ import annotations

from dataclasses import dataclass

from integrations.connectors import connector_class
from integrations.models import Connection, Sync
from tests.fakes.base import FakeVendor
from tests.integrations.conftest import make_sync
from tests.integrations.contract.profiles import ObjectProfile, VendorProfile


@dataclass
class Contract:
    profile: VendorProfile
    obj: ObjectProfile
    server: FakeVendor
    connection: Connection

    @property
    def destination(self):
        """The connector's own declaration of the object (max batch, supports_delete...)."""
        return connector_class(self.profile.vendor).objects[self.obj.name]

    @property
    def destination_config(self) -> dict:
        return self.obj.sync_fields.get("destination_config", {})

    @property
    def field(self) -> str:
        """The destination field the update mapping writes."""
        return self.obj.update[1]

    def sync(self, *, mappings=None, **fields) -> Sync:
        """A sync of the profile's dataset into the object, as the profile configures it."""
        return make_sync(
            self.connection,
            dataset=self.obj.dataset,
            obj=self.obj.name,
            mappings=list(self.obj.mappings if mappings is None else mappings),
            match=self.obj.match,
            **{**self.obj.sync_fields, **fields},
        )

    def make(self, n: int = 1, **attrs) -> list:
        return self.obj.make(n, **attrs)

    def value(self, record_or_value) -> str:
        if isinstance(record_or_value, str):
            return record_or_value
        return self.obj.match_value(record_or_value)

    def stored(self, record_or_value):
        """What the destination holds (live) for a record of ours, or None."""
        return self.obj.stored(self.server, self.value(record_or_value))

    def seed(self, record_or_value, **fields) -> None:
        """The destination already has this record, created by someone else."""
        self.obj.seed(self.server, self.value(record_or_value), **fields)

    def archived(self, record_or_value) -> bool:
        return self.obj.archived(self.server, self.value(record_or_value))

    def creations(self, record_or_value) -> int:
        return self.obj.creations(self.server, self.value(record_or_value))

    def writes(self):
        return self.obj.writes(self.server)
