"""factory-boy factories for the backbone and users."""

from datetime import UTC, datetime

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from exports.backbone import models as bb

NOW = datetime(2026, 11, 29, tzinfo=UTC)


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = bb.Company

    external_id = factory.Sequence(lambda n: f"T-{n:06d}")
    name = factory.Sequence(lambda n: f"Test Company {n}")
    domain = factory.Sequence(lambda n: f"company{n}.example")
    industry = "software"
    employees = 120
    annual_revenue = 5_000_000
    country = "DE"
    residency_region = "eu"
    city = "Berlin"
    lifecycle_stage = "lead"
    owner_email = "owner@ourcompany.example"
    is_customer = False
    created_at = NOW
    updated_at = NOW


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = bb.Contact

    company = factory.SubFactory(CompanyFactory)
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"
    title = "CMO"
    country = "DE"
    region = "eu"
    created_at = NOW
    updated_at = NOW


class ActivityEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = bb.ActivityEvent

    company = factory.SubFactory(CompanyFactory)
    contact = None
    type = "page_view"
    occurred_at = NOW


class ConsentRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = bb.ConsentRecord

    contact = factory.SubFactory(ContactFactory)
    purpose = "email_marketing"
    channel = "email"
    status = "granted"
    source = "web_form"
    recorded_at = NOW


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@ourcompany.example")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))
        if create:
            self.save()
