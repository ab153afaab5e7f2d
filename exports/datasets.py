"""The dataset registry: what can be exported or synced, and who may read it.

One registry feeds the export API, scheduled files and syncs. A dataset declares its fields
(SQL expressions over its FROM clause), the filters it accepts, its primary key and
``updated_at`` column, the permission and token scope that read it, and whether it holds
personal data. Queries are built from these declarations by ``exports.query``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from mktintegration.bounds import Range


class FieldType(StrEnum):
    TEXT = "text"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATETIME = "datetime"


class FilterKind(StrEnum):
    IN = "in"  # a comma-separated list of values; matches any
    SINCE = "since"  # column >= an ISO 8601 timestamp
    MIN = "min"  # column >= a number
    MAX = "max"  # column <= a number
    BOOL = "bool"  # true/false
    SEGMENT = "segment"  # segment keys, comma-separated: records in every one (docs/segments.md)


@dataclass(frozen=True)
class DatasetField:
    name: str
    sql: str
    type: FieldType
    description: str
    personal: bool = False
    unique: bool = False  # no two rows share a value (a unique column, one row per key)


@dataclass(frozen=True)
class DatasetFilter:
    name: str
    sql: str
    kind: FilterKind
    description: str
    type: FieldType = FieldType.TEXT
    choices: tuple[str, ...] = ()
    range: Range | None = None  # MIN/MAX filters: the values that can match (else INTEGER)
    subject: str = ""  # SEGMENT filters: the segments' subject (company or contact)


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    from_sql: str
    key: str  # the field name that identifies a row (keyset pagination, sync record key)
    updated_at: str  # the field name of the last-change timestamp
    fields: tuple[DatasetField, ...]
    filters: tuple[DatasetFilter, ...]
    default_fields: tuple[str, ...]
    personal_data: bool
    # Syncs: queries of keys, each with one %s for a timestamp, whose union is "every row that
    # may have changed since then" (the incremental plan's pre-filter). Each should be served
    # by an index on its timestamp, so the plan's cost follows the changes.
    changed_since: tuple[str, ...] = ()
    # Syncs: the field holding the data-residency region, and the SQL of the person whose
    # consent records apply (None: the dataset carries no consent).
    region_field: str = "region"
    consent_subject_sql: str | None = None
    # Real-time syncs: the change subjects (exports.backbone.changes) that reach this
    # dataset's records, each with the SQL of (key, subject id) pairs for the subject ids in
    # {ids}; "" when the subject's ids are the dataset's keys.
    realtime_subjects: tuple[tuple[str, str], ...] = ()
    _by_name: dict[str, DatasetField] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_by_name", {f.name: f for f in self.fields})

    @property
    def permission(self) -> str:
        return f"exports.export_{self.name}"

    @property
    def scope(self) -> str:
        return f"export:{self.name}"

    def field(self, name: str) -> DatasetField:
        return self._by_name[name]

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def filter_names(self) -> list[str]:
        return [f.name for f in self.filters]

    def filter(self, name: str) -> DatasetFilter:
        return next(f for f in self.filters if f.name == name)


_STAGES = (
    "subscriber",
    "lead",
    "mql",
    "sql",
    "opportunity",
    "customer",
    "evangelist",
    "churned",
)
_REGIONS = ("us", "eu", "uk", "apac", "latam")
_GRADES = ("A", "B", "C", "D", "F")
_HEALTH = Range(0, 100)  # backbone_companymetrics.health_score's check constraint

T, N, D, B, DT = (
    FieldType.TEXT,
    FieldType.INT,
    FieldType.DECIMAL,
    FieldType.BOOL,
    FieldType.DATETIME,
)


def _segment_filter(sql: str, subject: str) -> DatasetFilter:
    return DatasetFilter(
        "segment",
        sql,
        FilterKind.SEGMENT,
        f"segment keys ({subject} segments), comma-separated: records in every one",
        subject=subject,
    )


# Syncs re-read the records that joined or left a segment since the last plan.
def _segment_changes(subject: str) -> tuple[str, ...]:
    where = f"sg.subject = '{subject}'"  # company or contact: ours, never a request's
    return tuple(
        "SELECT sm.subject_id FROM backbone_segmentmember sm JOIN backbone_segment sg "  # noqa: S608
        f"ON sg.id = sm.segment_id WHERE {where} AND sm.{column} >= %s"
        for column in ("joined_at", "left_at")
    )


def _company_filters(prefix: str = "c") -> tuple[DatasetFilter, ...]:
    return (
        DatasetFilter(
            "lifecycle_stage",
            f"{prefix}.lifecycle_stage",
            FilterKind.IN,
            "lifecycle stages, comma-separated",
            choices=_STAGES,
        ),
        DatasetFilter(
            "country",
            f"{prefix}.country",
            FilterKind.IN,
            "ISO 3166-1 alpha-2 country codes, comma-separated",
        ),
        DatasetFilter(
            "region",
            f"{prefix}.residency_region",
            FilterKind.IN,
            "data-residency regions, comma-separated",
            choices=_REGIONS,
        ),
        DatasetFilter(
            "industry", f"{prefix}.industry", FilterKind.IN, "industries, comma-separated"
        ),
        DatasetFilter(
            "is_customer", f"{prefix}.is_customer", FilterKind.BOOL, "true or false", type=B
        ),
    )


CLIENTS = Dataset(
    name="clients",
    label="Clients (companies)",
    from_sql=("backbone_company c LEFT JOIN backbone_companymetrics m ON m.company_id = c.id"),
    key="id",
    updated_at="updated_at",
    fields=(
        DatasetField("id", "c.id", N, "internal company id", unique=True),
        DatasetField(
            "external_id", "c.external_id", T, "the company's id in the CRM of record", unique=True
        ),
        DatasetField("name", "c.name", T, "company name"),
        DatasetField("domain", "c.domain", T, "web domain"),
        DatasetField("industry", "c.industry", T, "industry"),
        DatasetField("employees", "c.employees", N, "number of employees"),
        DatasetField("annual_revenue", "c.annual_revenue", D, "annual revenue"),
        DatasetField("country", "c.country", T, "ISO 3166-1 alpha-2 country"),
        DatasetField("region", "c.residency_region", T, "data-residency region"),
        DatasetField("city", "c.city", T, "city"),
        DatasetField("lifecycle_stage", "c.lifecycle_stage", T, "lifecycle stage"),
        DatasetField("owner_email", "c.owner_email", T, "account owner (our staff)"),
        DatasetField("is_customer", "c.is_customer", B, "a paying customer"),
        DatasetField("health_score", "m.health_score", N, "health score 0-100 (docs/metrics.md)"),
        DatasetField("created_at", "c.created_at", DT, "when the company was created"),
        DatasetField("updated_at", "c.updated_at", DT, "when the company last changed"),
    ),
    filters=(
        DatasetFilter(
            "updated_since",
            "c.updated_at",
            FilterKind.SINCE,
            "rows changed at or after this ISO 8601 time",
            type=DT,
        ),
        *_company_filters(),
        DatasetFilter(
            "min_health_score",
            "m.health_score",
            FilterKind.MIN,
            "health score at least",
            type=N,
            range=_HEALTH,
        ),
        _segment_filter("c.id", "company"),
    ),
    default_fields=(
        "id",
        "external_id",
        "name",
        "domain",
        "industry",
        "employees",
        "annual_revenue",
        "country",
        "region",
        "city",
        "lifecycle_stage",
        "is_customer",
        "health_score",
        "updated_at",
    ),
    personal_data=False,
    changed_since=(
        "SELECT id FROM backbone_company WHERE updated_at >= %s",
        "SELECT company_id FROM backbone_companymetrics WHERE updated_at >= %s",
        *_segment_changes("company"),
    ),
    realtime_subjects=(("company", ""),),
)

METRICS = Dataset(
    name="metrics",
    label="Company metrics and lead scores",
    from_sql="backbone_companymetrics m JOIN backbone_company c ON c.id = m.company_id",
    key="company_id",
    updated_at="updated_at",
    fields=(
        DatasetField("company_id", "m.company_id", N, "internal company id"),
        DatasetField(
            "external_id", "c.external_id", T, "the company's id in the CRM of record", unique=True
        ),
        DatasetField("name", "c.name", T, "company name"),
        DatasetField("activity_7d", "m.activity_7d", N, "activity events, last 7 days"),
        DatasetField("activity_30d", "m.activity_30d", N, "activity events, last 30 days"),
        DatasetField("activity_90d", "m.activity_90d", N, "activity events, last 90 days"),
        DatasetField(
            "active_contacts_90d", "m.active_contacts_90d", N, "contacts active in the last 90 days"
        ),
        DatasetField("last_activity_at", "m.last_activity_at", DT, "latest activity"),
        DatasetField("health_score", "m.health_score", N, "health score 0-100"),
        DatasetField("lead_fit_score", "m.lead_fit_score", N, "lead fit 0-100"),
        DatasetField(
            "lead_engagement_score", "m.lead_engagement_score", N, "lead engagement 0-100"
        ),
        DatasetField("lead_grade", "m.lead_grade", T, "lead grade A-F"),
        DatasetField("region", "c.residency_region", T, "the company's data-residency region"),
        DatasetField("updated_at", "m.updated_at", DT, "when these metrics last changed"),
    ),
    filters=(
        DatasetFilter(
            "updated_since",
            "m.updated_at",
            FilterKind.SINCE,
            "rows changed at or after this ISO 8601 time",
            type=DT,
        ),
        DatasetFilter(
            "min_health_score",
            "m.health_score",
            FilterKind.MIN,
            "health score at least",
            type=N,
            range=_HEALTH,
        ),
        DatasetFilter(
            "max_health_score",
            "m.health_score",
            FilterKind.MAX,
            "health score at most",
            type=N,
            range=_HEALTH,
        ),
        DatasetFilter(
            "lead_grade",
            "m.lead_grade",
            FilterKind.IN,
            "lead grades, comma-separated",
            choices=_GRADES,
        ),
        *_company_filters(),
        _segment_filter("m.company_id", "company"),
    ),
    default_fields=(
        "company_id",
        "external_id",
        "name",
        "activity_7d",
        "activity_30d",
        "activity_90d",
        "active_contacts_90d",
        "last_activity_at",
        "health_score",
        "lead_fit_score",
        "lead_engagement_score",
        "lead_grade",
        "updated_at",
    ),
    personal_data=False,
    changed_since=(
        "SELECT company_id FROM backbone_companymetrics WHERE updated_at >= %s",
        "SELECT id FROM backbone_company WHERE updated_at >= %s",
        *_segment_changes("company"),
    ),
    realtime_subjects=(("company", ""),),
)

# The latest e-mail marketing consent of a contact (the consent_lookup_idx index serves it).
EMAIL_CONSENT_SQL = (
    "(SELECT cr.status FROM backbone_consentrecord cr WHERE cr.contact_id = ct.id "
    "AND cr.purpose = 'email_marketing' AND cr.channel = 'email' "
    "ORDER BY cr.recorded_at DESC, cr.id DESC LIMIT 1)"
)

CONTACTS = Dataset(
    name="contacts",
    label="Contacts (personal data)",
    from_sql="backbone_contact ct JOIN backbone_company c ON c.id = ct.company_id",
    key="id",
    updated_at="updated_at",
    fields=(
        DatasetField("id", "ct.id", N, "internal contact id", unique=True),
        DatasetField("email", "ct.email", T, "e-mail address", personal=True),
        DatasetField("first_name", "ct.first_name", T, "first name", personal=True),
        DatasetField("last_name", "ct.last_name", T, "last name", personal=True),
        DatasetField("title", "ct.title", T, "job title", personal=True),
        DatasetField("country", "ct.country", T, "ISO 3166-1 alpha-2 country"),
        DatasetField("region", "ct.region", T, "data-residency region"),
        DatasetField("company_id", "ct.company_id", N, "internal company id"),
        DatasetField("company_external_id", "c.external_id", T, "the company's CRM id"),
        DatasetField("company_name", "c.name", T, "company name"),
        DatasetField("lifecycle_stage", "c.lifecycle_stage", T, "the company's lifecycle stage"),
        DatasetField(
            "email_consent",
            EMAIL_CONSENT_SQL,
            T,
            "latest e-mail marketing consent: granted, withdrawn, denied or empty",
        ),
        DatasetField("created_at", "ct.created_at", DT, "when the contact was created"),
        DatasetField("updated_at", "ct.updated_at", DT, "when the contact last changed"),
    ),
    filters=(
        DatasetFilter(
            "updated_since",
            "ct.updated_at",
            FilterKind.SINCE,
            "rows changed at or after this ISO 8601 time",
            type=DT,
        ),
        DatasetFilter("country", "ct.country", FilterKind.IN, "countries, comma-separated"),
        DatasetFilter(
            "region", "ct.region", FilterKind.IN, "regions, comma-separated", choices=_REGIONS
        ),
        DatasetFilter(
            "company_external_id",
            "c.external_id",
            FilterKind.IN,
            "company CRM ids, comma-separated",
        ),
        DatasetFilter(
            "lifecycle_stage",
            "c.lifecycle_stage",
            FilterKind.IN,
            "the company's lifecycle stages, comma-separated",
            choices=_STAGES,
        ),
        _segment_filter("ct.id", "contact"),
    ),
    default_fields=(
        "id",
        "email",
        "first_name",
        "last_name",
        "title",
        "country",
        "region",
        "company_external_id",
        "company_name",
        "email_consent",
        "updated_at",
    ),
    personal_data=True,
    changed_since=(
        "SELECT id FROM backbone_contact WHERE updated_at >= %s",
        "SELECT ct2.id FROM backbone_contact ct2 JOIN backbone_company c2 "
        "ON c2.id = ct2.company_id WHERE c2.updated_at >= %s",
        "SELECT contact_id FROM backbone_consentrecord WHERE recorded_at >= %s",
        *_segment_changes("contact"),
    ),
    consent_subject_sql="ct.id",
    # A contact's row carries its company's name and stage: they change with the company.
    realtime_subjects=(
        ("contact", ""),
        ("company", "SELECT id, company_id FROM backbone_contact WHERE company_id IN ({ids})"),
    ),
)

DATASETS: dict[str, Dataset] = {d.name: d for d in (CLIENTS, METRICS, CONTACTS)}


def dataset_get(name: str) -> Dataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(
            f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}"
        ) from None
