import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from projects.tags import tag_keys_validate, tags_validate
from tracker import formatting
from tracker.models import TimeStampedModel, TimeStampedQuerySet, UpdatedAtModel


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    CONTRIBUTOR = "contributor", "Contributor"
    MANAGER = "manager", "Manager"
    ADMIN = "admin", "Admin"

    @classmethod
    def rank(cls, role: str) -> int:
        """Return the role's rank: viewer < contributor < manager < admin."""
        return list(cls.values).index(role)


class Industry(models.TextChoices):
    FINANCE = "finance", "Finance"
    HEALTHCARE = "healthcare", "Healthcare"
    RETAIL = "retail", "Retail"
    MEDIA = "media", "Media"
    TECHNOLOGY = "technology", "Technology"
    PUBLIC_SECTOR = "public_sector", "Public sector"
    MANUFACTURING = "manufacturing", "Manufacturing"
    OTHER = "other", "Other"


class UseCase(models.TextChoices):
    CUSTOMER_SUPPORT = "customer_support", "Customer support"
    CONTENT_GENERATION = "content_generation", "Content generation"
    DATA_ANALYSIS = "data_analysis", "Data analysis"
    FRAUD_DETECTION = "fraud_detection", "Fraud detection"
    RECOMMENDATION = "recommendation", "Recommendation"
    CLINICAL_DOCUMENTATION = "clinical_documentation", "Clinical documentation"
    RESEARCH = "research", "Research and discovery"
    CODING_ASSISTANT = "coding_assistant", "Coding assistant"
    PERSONALIZATION = "personalization", "Personalization"
    OTHER = "other", "Other"


class DataClassification(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    PERSONAL = "personal", "Personal data"
    SENSITIVE_PERSONAL = "sensitive_personal", "Sensitive personal data"

    @classmethod
    def personal(cls) -> tuple[str, ...]:
        return (cls.PERSONAL, cls.SENSITIVE_PERSONAL)


class AIActTier(models.TextChoices):
    """Risk tier under the EU AI Act."""

    UNASSESSED = "unassessed", "Unassessed"
    MINIMAL = "minimal", "Minimal"
    LIMITED = "limited", "Limited"
    HIGH = "high", "High"
    UNACCEPTABLE = "unacceptable", "Unacceptable"


class Stage(models.TextChoices):
    IDEATION = "ideation", "Ideation"
    DATA_PREPARATION = "data_preparation", "Data preparation"
    DEVELOPMENT = "development", "Development"
    EVALUATION = "evaluation", "Evaluation"
    PILOT = "pilot", "Pilot"
    PRODUCTION = "production", "Production"
    RETIRED = "retired", "Retired"

    @classmethod
    def order(cls, stage: str) -> int:
        return STAGE_ORDER[stage]

    @classmethod
    def following(cls, stage: str) -> str | None:
        """Return the stage a project moves forward to from `stage` (none from production or retired)."""
        if stage in (cls.PRODUCTION, cls.RETIRED):
            return None
        return STAGES[STAGE_ORDER[stage] + 1]


# The lifecycle in order, computed once: `Stage.values` builds its list on every access, and the report and
# the dashboard ask for the next stage of every project.
STAGES = tuple(Stage.values)
STAGE_ORDER = {stage: i for i, stage in enumerate(STAGES)}


class Health(models.TextChoices):
    GREEN = "green", "On track"
    AMBER = "amber", "At risk"
    RED = "red", "Off track"


def validate_locale(value: str) -> None:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(value)
    except (ValueError, UnknownLocaleError):
        raise ValidationError(f"“{value}” is not a known locale (e.g. en, de, fr_CH).") from None


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known IANA time zone (e.g. Europe/Berlin).")


PERCENT = [MinValueValidator(0), MaxValueValidator(100)]


class Organization(TimeStampedModel):
    """The tenant: every other row belongs to exactly one organization."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    currency = models.CharField(
        max_length=3,
        default="USD",
        validators=[RegexValidator(r"^[A-Z]{3}$", "Use a three-letter ISO 4217 code, e.g. USD.")],
        help_text="ISO 4217 code, e.g. USD, EUR.",
    )
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="IANA name, e.g. Europe/Berlin.",
    )
    locale = models.CharField(
        max_length=16,
        # A database default too, so that the release before, which knows no locale, can still insert.
        default="en",
        db_default="en",
        validators=[validate_locale],
        help_text="How money, numbers and dates read for people (CLDR locale, e.g. en, de, fr_CH).",
    )
    # OTLP resource attributes kept as tags of the usage they carry (they join the usage aggregate's key).
    otlp_tag_keys = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        validators=[tag_keys_validate],
        verbose_name="OTLP tag keys",
        help_text="Resource attributes (e.g. deployment.environment) whose values tag OTLP usage.",
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="organizations")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"),
                name="organization_currency_iso4217",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


class Membership(TimeStampedModel):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        ordering = ["organization", "user"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_one_per_user_org"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization} ({self.get_role_display()})"

    def has_role(self, role: str) -> bool:
        return Role.rank(self.role) >= Role.rank(role)


class Team(TimeStampedModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    description = models.TextField(blank=True)
    # Also who hears of the team's budget thresholds (ops.services.budgets), besides the managers.
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The member who answers for the team's projects.",
    )
    # Database default too, so that the release before, which knows no such column, can still insert.
    archived = models.BooleanField(
        default=False,
        db_default=False,
        help_text="An archived team keeps its projects but is offered for no new one.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="team_slug_unique_per_org"),
        ]

    def __str__(self) -> str:
        return self.name


class CostCentre(TimeStampedModel):
    """Where finance charges spend back to: projects belong to one, chargeback groups by it."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="cost_centres")
    code = models.CharField(max_length=40, help_text="The finance system's code, e.g. CC-4100.")
    name = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="cost_centre_code_unique_per_org"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Project(TimeStampedModel):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="projects")
    cost_centre = models.ForeignKey(
        CostCentre, on_delete=models.SET_NULL, null=True, blank=True, related_name="projects"
    )
    # Free key=value labels (projects/tags.py); chargeback groups by a key.
    tags = models.JSONField(default=dict, db_default={}, blank=True, validators=[tags_validate])
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    summary = models.TextField(blank=True)
    industry = models.CharField(max_length=32, choices=Industry.choices, default=Industry.OTHER)
    use_case = models.CharField(max_length=32, choices=UseCase.choices, default=UseCase.OTHER)
    business_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    technical_lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    human_oversight_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The person accountable for human oversight (EU AI Act, high-risk systems).",
    )
    start_date = models.DateField(null=True, blank=True)
    target_date = models.DateField(null=True, blank=True)
    data_classification = models.CharField(
        max_length=32,
        choices=DataClassification.choices,
        blank=True,
        help_text="Blank until classified.",
    )
    ai_act_tier = models.CharField(max_length=16, choices=AIActTier.choices, default=AIActTier.UNASSESSED)
    stage = models.CharField(max_length=32, choices=Stage.choices, default=Stage.IDEATION)
    stage_entered_at = models.DateTimeField()
    # Denormalised from the newest status update so lists need no subquery.
    health = models.CharField(max_length=8, choices=Health.choices, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, validators=PERCENT)
    last_status_date = models.DateField(null=True, blank=True)
    archived = models.BooleanField(default=False)
    # The OpenTelemetry `service.name` values whose spans are this project's usage (ops/otlp.py). A
    # database default too, so that the release before, which knows no such column, can still insert.
    otel_service_names = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        verbose_name="OpenTelemetry service names",
        help_text="The service.name values whose GenAI spans are this project's usage.",
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="project_slug_unique_per_org"),
            models.CheckConstraint(condition=Q(stage__in=Stage.values), name="project_stage_valid"),
            models.CheckConstraint(
                condition=Q(health__in=[*Health.values, ""]),
                name="project_health_valid",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="project_progress_0_100"),
            models.CheckConstraint(
                condition=Q(target_date__isnull=True)
                | Q(start_date__isnull=True)
                | Q(target_date__gte=models.F("start_date")),
                name="project_target_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "stage"]),
            models.Index(fields=["organization", "health"]),
            models.Index(fields=["organization", "updated_at", "id"]),  # incremental sync (cursor pages)
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("projects:detail", kwargs={"pk": self.pk})


class StageTransition(UpdatedAtModel):  # never edited; `updated_at` so every list syncs alike
    """One move of a project through the lifecycle. Never edited."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=32, choices=Stage.choices)
    to_stage = models.CharField(max_length=32, choices=Stage.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    note = models.TextField(blank=True)
    overridden_gates = models.JSONField(default=list, blank=True)
    override_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["project", "at"]
        indexes = [models.Index(fields=["project", "at"])]

    def __str__(self) -> str:
        return f"{self.project}: {self.get_from_stage_display()} → {self.get_to_stage_display()}"


class StatusUpdate(TimeStampedModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="status_updates")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    date = models.DateField()
    health = models.CharField(max_length=8, choices=Health.choices)
    progress = models.PositiveSmallIntegerField(validators=PERCENT)
    summary = models.TextField()
    accomplishments = models.TextField(blank=True)
    blockers = models.TextField(blank=True)
    next_steps = models.TextField(blank=True)

    class Meta:
        ordering = ["-date", "-created_at"]
        indexes = [models.Index(fields=["project", "-date"])]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="status_progress_0_100"),
            models.CheckConstraint(condition=Q(health__in=Health.values), name="status_health_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.project} {formatting.date(self.date, None)} ({self.get_health_display()})"


class NotificationKind(models.TextChoices):
    """The e-mails a member may choose to receive, each per organization."""

    STATUS_DIGEST = "status_digest", "Weekly status summary digest"
    RISK_DIGEST = "risk_digest", "Weekly risk report digest"
    REVIEW_REMINDER = "review_reminder", "Risk review reminders"


class NotificationSubscription(TimeStampedModel):
    """A member's choice for one kind of e-mail in one organization; no row means the default, subscribed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_choices")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="notification_choices")
    kind = models.CharField(max_length=32, choices=NotificationKind.choices)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["organization", "user", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["user", "organization", "kind"], name="notification_one_per_user_org_kind"),
            models.CheckConstraint(condition=Q(kind__in=NotificationKind.values), name="notification_kind_valid"),
        ]

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"{self.user} @ {self.organization}: {self.get_kind_display()} {state}"


class TokenScope(models.TextChoices):
    """What a service token may do inside its organization."""

    READ = "read", "Read"
    INGEST = "ingest", "Read and ingest"

    @property
    def role(self) -> Role:
        """Return the role the scope reads with: ingest writes through the ingest endpoints only."""
        return Role.CONTRIBUTOR if self == TokenScope.INGEST else Role.VIEWER


class ServiceAccount(models.Model):
    """The user a service token acts as: one per organization and scope, never a person.

    It has an unusable password (it cannot sign in) and a membership with its scope's role, so the
    role checks and the scoping every service already does apply to service tokens unchanged.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_account")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="service_accounts")
    scope = models.CharField(max_length=16, choices=TokenScope.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "scope"], name="service_account_one_per_org_scope"),
            models.CheckConstraint(condition=Q(scope__in=TokenScope.values), name="service_account_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.organization} service ({self.get_scope_display()})"


class ApiTokenQuerySet(TimeStampedQuerySet):
    def live(self) -> "ApiTokenQuerySet":
        """Return the tokens that still authenticate: not revoked, not expired."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()), revoked_at=None)


class ApiToken(UpdatedAtModel):
    """An API token. Only its SHA-256 hash is stored; the raw key is shown once.

    A personal token acts as its user and dies with their password. A service token belongs to an
    organization (its user is the organization's service account for its scope) and outlives
    whoever created it.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    organization = models.ForeignKey(
        Organization,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="service_tokens",
        help_text="Set for a service token; empty for a personal one.",
    )
    scope = models.CharField(max_length=16, choices=TokenScope.choices, blank=True, default="", db_default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    expiry_warned_at = models.DateTimeField(null=True, blank=True, help_text="When the owner was told it expires.")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"
        constraints = [
            # A service token has a scope and a personal one has none (it acts with its user's role).
            models.CheckConstraint(
                condition=Q(organization__isnull=True, scope="")
                | Q(organization__isnull=False, scope__in=TokenScope.values),
                name="api_token_scope_iff_service",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_service(self) -> bool:
        return self.organization_id is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and not self.is_expired


class InvitationQuerySet(TimeStampedQuerySet):
    def pending(self) -> "InvitationQuerySet":
        """Neither accepted nor revoked (an expired one is still pending: resending renews it)."""
        return self.filter(accepted_at__isnull=True, revoked_at__isnull=True)


class Invitation(UpdatedAtModel):
    """An invitation to join an organization, sent by e-mail and accepted through its link.

    The link carries a random token of which only the SHA-256 hash is kept; resending makes a new
    token, so only the newest link works.
    """

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    last_sent_at = models.DateTimeField(default=timezone.now)
    send_count = models.PositiveSmallIntegerField(default=1)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                "organization",
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_pending_per_org_email",
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="invitation_role_valid"),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_not_accepted_and_revoked",
            ),
        ]
        indexes = [models.Index(fields=["organization", "invited_by", "created_at"])]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization} ({self.get_role_display()})"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"
    BATCH = "batch", "Batch"


class AuditEvent(models.Model):
    """One recorded change: who, when, what (old → new). Append-only.

    References are kept without database constraints and never cascade: history outlives the rows
    it describes. On PostgreSQL a trigger refuses UPDATE and DELETE on this table.
    """

    at = models.DateTimeField(default=timezone.now)
    # No single-column indexes: the composite ones below lead with organization and project, and
    # nothing looks history up by actor or token; every index is paid on every audited write.
    organization = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, null=True, related_name="+"
    )
    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, null=True, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        related_name="+",
    )
    token = models.ForeignKey(
        ApiToken, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, null=True, related_name="+"
    )
    actor_repr = models.CharField(max_length=300, help_text="Who, as it read at the time (user, token or system).")
    action = models.CharField(max_length=8, choices=AuditAction.choices)
    object_type = models.CharField(max_length=64, help_text="app_label.model")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    changes = models.JSONField(default=dict, help_text="field: [old, new]")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["project", "-at"]),
            models.Index(fields=["object_type", "object_id", "-at"]),
            models.Index(fields=["organization", "-at"]),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_repr} {self.action} {self.object_type} {self.object_repr}"


class IdempotencyKey(models.Model):
    """An API caller's `Idempotency-Key` on one path: claimed while its POST runs, then the answer retries get.

    `status` is empty while the first request runs. Rows go API_IDEMPOTENCY_KEY_HOURS after their claim
    (projects.idempotency_keys_purge). The caller is a string, not a foreign key: a key outlives nothing
    for more than a day, and a service token is a caller of its own (its user is shared by every token of
    its organization and scope).
    """

    caller = models.CharField(max_length=40, help_text="user:<id>, or service-token:<id>.")
    path = models.CharField(max_length=1024)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the request's query string and body.")
    claimed_at = models.DateTimeField(default=timezone.now)
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty while the request runs.")
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField(default=b"", blank=True)

    class Meta:
        constraints = [
            # What makes two requests with one key unable to both run: the claim is an INSERT ... ON CONFLICT.
            models.UniqueConstraint(fields=["caller", "path", "key"], name="idempotency_key_one_per_caller_path"),
        ]
        indexes = [models.Index(fields=["claimed_at"], name="idempotency_key_claimed_at")]

    def __str__(self) -> str:
        return f"{self.caller} {self.path} {self.key}"
