"""Checking the planned syncs with the admin's services, mapping by mapping.

``sync_validate`` reports a sync's errors by field; the mappings are checked here one by one
(their source in the dataset, their target among the destination's real, writable fields) so
each error names its mapping's path.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from exports.datasets import DATASETS
from integrations.connectors import REGISTRY
from integrations.mapping_rules import mapping_problems
from integrations.models import Connection
from integrations.operations.configure.document import Errors, join
from integrations.operations.configure.plan import Plan, SyncPlan
from integrations.services import sync_destination_fields, sync_validate
from mktintegration.errors import ConnectorError

# sync_validate's error keys that are not document fields of the sync as they are.
_SYNC_KEY_PATHS = {"connection": "destination_object"}


def validate_syncs(plan: Plan) -> None:
    """Check every planned sync with the admin's services, against the destination's real
    fields when the connection is sound (a new one must have been saved first)."""
    connection = plan.connection
    usable = connection.pk is not None and not any(
        path.startswith("connection") for path, _ in plan.errors
    )
    for sync_plan in plan.syncs:
        # Otherwise check what does not need the vendor (dataset, source fields, schedule)
        # against an unsaved stand-in.
        sync_plan.sync.connection = connection if usable else Connection(vendor=connection.vendor)
        plan.errors += _sync_errors(sync_plan, usable=usable)
        sync_plan.sync.connection = connection


def _sync_errors(plan: SyncPlan, *, usable: bool) -> Errors:
    sync, path = plan.sync, join("syncs", plan.index)
    errors = _mapping_errors(plan, usable=usable)
    try:
        sync_validate(sync, plan.mappings)
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            if key == "mappings" and errors:
                continue  # already reported mapping by mapping
            target = join(path, _SYNC_KEY_PATHS.get(key, key))
            errors += [(target, message) for message in messages]
    return errors


def _mapping_errors(plan: SyncPlan, *, usable: bool) -> Errors:
    """The mappings by path, checked by the one mapping validator (mapping_rules)."""
    sync, path = plan.sync, join("syncs", plan.index)
    dataset = DATASETS.get(sync.dataset)
    if dataset is None:
        return []  # sync_validate names the unknown dataset
    connector = REGISTRY.get(sync.connection.vendor) if usable else None
    destination = connector.objects.get(sync.destination_object) if connector else None
    known = None
    if destination is not None:
        try:
            known = sync_destination_fields(sync)
        except ConnectorError:
            known = None  # sync_validate reports that the fields could not be read
    errors: Errors = []
    for problem in mapping_problems(
        plan.mappings,
        dataset=dataset,
        fields=known,
        label=connector.label if connector else "the destination",
        object_name=sync.destination_object,
        match_field=sync.match_destination_field,
    ):
        where = join(path, "mappings")
        if problem.index is not None:
            where = join(join(where, problem.index), problem.field)
        errors.append((where, problem.message))
    return errors
