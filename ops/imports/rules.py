"""The organization's bill mapping rules: which project a FOCUS row belongs to when its Tags do not say."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from ops.imports.models import BillingMappingRule, MappingField
from projects import audit
from projects.models import Organization, Project, Role
from projects.services import membership_require
from tracker.exceptions import Conflict, ValidationFailed


@transaction.atomic
def billing_rule_create(
    *, organization: Organization, field: str, value: str, project: Project, by: AbstractBaseUser
) -> BillingMappingRule:
    """Map bill rows whose `field` equals `value` to `project` (managers); one rule per field and value."""
    membership_require(user=by, organization=organization, role=Role.MANAGER)
    value = value.strip()
    errors: dict[str, list[str]] = {}
    if field not in MappingField.values:
        errors["field"] = [f"Choose one of {', '.join(MappingField.values)}."]
    if not value:
        errors["value"] = ["This field is required."]
    if project.organization_id != organization.pk:
        errors["project"] = ["Unknown project."]
    if errors:
        raise ValidationFailed(next(iter(errors.values()))[0], errors=errors)
    try:
        with transaction.atomic():
            rule = BillingMappingRule.objects.create(
                organization=organization, field=field, value=value, project=project, created_by=by
            )
    except IntegrityError:
        raise Conflict(
            f"A rule already maps {field} = {value}.", errors={"value": ["A rule already maps this value."]}
        ) from None
    audit.record_created(rule)
    return rule


@transaction.atomic
def billing_rule_delete(*, rule: BillingMappingRule, by: AbstractBaseUser) -> None:
    """Delete a mapping rule (managers); rows imported before keep their project until re-imported."""
    membership_require(user=by, organization=rule.organization, role=Role.MANAGER)
    audit.record_deleted(rule)
    rule.delete()
