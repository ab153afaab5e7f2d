"""The backbone: the company's own data, as the rest of the system reads it.

Nothing in mktintegration edits these rows. ``seed_demo`` fills them for the demo and the
benchmarks; ``refresh_company_metrics`` recomputes the derived ``CompanyMetrics`` table.
"""

from django.core.exceptions import ValidationError
from django.db import models


class LifecycleStage(models.TextChoices):
    SUBSCRIBER = "subscriber", "Subscriber"
    LEAD = "lead", "Lead"
    MQL = "mql", "Marketing qualified lead"
    SQL = "sql", "Sales qualified lead"
    OPPORTUNITY = "opportunity", "Opportunity"
    CUSTOMER = "customer", "Customer"
    EVANGELIST = "evangelist", "Evangelist"
    CHURNED = "churned", "Churned"


class Region(models.TextChoices):
    """Data-residency regions: where a record's data may be sent."""

    US = "us", "United States / Canada"
    EU = "eu", "European Union"
    UK = "uk", "United Kingdom"
    APAC = "apac", "Asia-Pacific"
    LATAM = "latam", "Latin America"


def regions_validate(value, *, field: str) -> None:
    """A list of known residency regions (empty allows all); ValidationError on ``field``."""
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise ValidationError({field: 'Give a list of regions, e.g. ["eu", "uk"].'})
    unknown = sorted(set(value) - set(Region.values))
    if unknown:
        raise ValidationError(
            {field: f"Unknown region(s) {', '.join(unknown)}; known: {', '.join(Region.values)}."}
        )


class Company(models.Model):
    external_id = models.CharField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    domain = models.CharField(max_length=255, blank=True)
    industry = models.CharField(max_length=64, blank=True, db_index=True)
    employees = models.IntegerField(null=True, blank=True)
    annual_revenue = models.DecimalField(max_digits=15, decimal_places=2, null=True, blank=True)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    residency_region = models.CharField(max_length=8, choices=Region.choices, db_index=True)
    city = models.CharField(max_length=100, blank=True)
    lifecycle_stage = models.CharField(max_length=20, choices=LifecycleStage.choices)
    owner_email = models.EmailField(blank=True)
    is_customer = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "companies"
        indexes = [models.Index(fields=["updated_at", "id"], name="company_updated_idx")]

    def __str__(self):
        return f"{self.name} ({self.external_id})"


class Contact(models.Model):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="contacts")
    email = models.EmailField(max_length=254, unique=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    title = models.CharField(max_length=150, blank=True)
    country = models.CharField(max_length=2, blank=True)
    region = models.CharField(max_length=8, choices=Region.choices, blank=True, db_index=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["updated_at", "id"], name="contact_updated_idx")]

    def __str__(self):
        return self.email


class ActivityType(models.TextChoices):
    PAGE_VIEW = "page_view", "Page view"
    EMAIL_OPEN = "email_open", "Email open"
    EMAIL_CLICK = "email_click", "Email click"
    FORM_SUBMIT = "form_submit", "Form submitted"
    WEBINAR = "webinar", "Webinar attended"
    DEMO_REQUEST = "demo_request", "Demo requested"
    MEETING = "meeting", "Meeting held"
    SUPPORT_TICKET = "support_ticket", "Support ticket"


class ActivityEvent(models.Model):
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="events")
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    type = models.CharField(max_length=32, choices=ActivityType.choices)
    occurred_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["company", "occurred_at"], name="event_company_time_idx")]

    def __str__(self):
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class ConsentPurpose(models.TextChoices):
    EMAIL_MARKETING = "email_marketing", "Email marketing"
    NEWSLETTER = "newsletter", "Newsletter"
    PRODUCT_UPDATES = "product_updates", "Product updates"
    PROFILING = "profiling", "Profiling and scoring"


class ConsentChannel(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    SMS = "sms", "SMS"


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", "Granted"
    WITHDRAWN = "withdrawn", "Withdrawn"
    DENIED = "denied", "Denied"


class ConsentRecord(models.Model):
    """One consent event. For a contact, purpose and channel the latest record is in force."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(max_length=32, choices=ConsentPurpose.choices)
    channel = models.CharField(max_length=16, choices=ConsentChannel.choices)
    status = models.CharField(max_length=16, choices=ConsentStatus.choices)
    source = models.CharField(max_length=64, blank=True)
    recorded_at = models.DateTimeField()
    # What the recorder can show later (a vendor's unsubscribe: vendor, event id, time, raw
    # reference); written by exports.backbone.providers.consent.consent_record.
    evidence = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["contact", "purpose", "channel", "recorded_at"], name="consent_lookup_idx"
            ),
            # Syncs re-read contacts whose consent changed since their last plan.
            models.Index(fields=["recorded_at"], name="consent_recorded_idx"),
        ]

    def __str__(self):
        return f"{self.purpose}/{self.channel}: {self.status}"


class LeadGrade(models.TextChoices):
    A = "A"
    B = "B"
    C = "C"
    D = "D"
    F = "F"


class CompanyMetrics(models.Model):
    """Derived per-company metrics and lead-scoring indicators (a refreshable table).

    Recomputed in SQL by ``exports.backbone.metrics.refresh_company_metrics``; a row's
    ``updated_at`` moves only when one of its values changed, so exports and syncs of the
    metrics dataset stay incremental. The formulas are in docs/metrics.md.
    """

    company = models.OneToOneField(
        Company, on_delete=models.CASCADE, primary_key=True, related_name="metrics"
    )
    activity_7d = models.IntegerField(default=0)
    activity_30d = models.IntegerField(default=0)
    activity_90d = models.IntegerField(default=0)
    active_contacts_90d = models.IntegerField(default=0)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    health_score = models.SmallIntegerField(default=0)
    lead_fit_score = models.SmallIntegerField(default=0)
    lead_engagement_score = models.SmallIntegerField(default=0)
    lead_grade = models.CharField(max_length=1, choices=LeadGrade.choices, default=LeadGrade.F)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "company metrics"
        indexes = [
            models.Index(fields=["updated_at", "company"], name="metrics_updated_idx"),
            models.Index(fields=["health_score"], name="metrics_health_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(health_score__gte=0, health_score__lte=100),
                name="metrics_health_score_range",
            ),
        ]

    def __str__(self):
        return f"metrics for company {self.company_id}"


class MetricsRefresh(models.Model):
    """One row per refresh of CompanyMetrics: when, how long, how many rows changed."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    as_of = models.DateTimeField(help_text="The 'now' the activity windows were measured from.")
    companies = models.IntegerField()
    changed = models.IntegerField()

    class Meta:
        get_latest_by = "finished_at"

    def __str__(self):
        return f"refresh at {self.finished_at:%Y-%m-%d %H:%M}: {self.changed} changed"


class SegmentSubject(models.TextChoices):
    COMPANY = "company", "Companies"
    CONTACT = "contact", "Contacts"


class Segment(models.Model):
    """A named set of companies or contacts, as the segmentation engine defines it.

    Its membership is written by exports.backbone.segments only (``manage.py segment_load``,
    the demo seed); ``version`` goes up by one with every change of membership, so an export
    or a run can say which version of the segment it read (docs/segments.md)."""

    key = models.SlugField(max_length=64, unique=True, help_text="How filters name it.")
    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=16, choices=SegmentSubject.choices)
    description = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("key",)

    def __str__(self):
        return self.name


class SegmentMember(models.Model):
    """A company or contact in a segment. A member who leaves is kept, with ``left_at``, so
    that an incremental sync plan sees the change (as it sees a changed record)."""

    # No index of its own: the (segment, subject_id) unique index serves look-ups by segment.
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="members", db_index=False
    )
    subject_id = models.BigIntegerField(help_text="The company's or contact's id.")
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "subject_id"], name="segment_member_unique")
        ]
        indexes = [
            models.Index(fields=["joined_at"], name="segment_joined_idx"),
            models.Index(fields=["left_at"], name="segment_left_idx"),
        ]

    def __str__(self):
        return f"{self.subject_id} in {self.segment_id}"


# The change outbox (real-time syncs) lives in its own module, with its triggers.
from exports.backbone.changes import ChangeEvent, ChangeSubscription  # noqa: E402, F401
