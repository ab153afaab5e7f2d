from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person, or an API service account (no password login, tokens only)."""

    is_service_account = models.BooleanField(
        default=False,
        help_text="A machine client of the API: authenticates with tokens, never logs in.",
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker ran the heartbeat task (written every 30 s by beat)."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self):
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"
