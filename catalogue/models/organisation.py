"""People and organisation: the bottom layer every other app may use."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class CostCentre(models.Model):
    """A unit that is charged for services (Kostenstelle)."""

    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=200)
    owner = models.ForeignKey(
        "catalogue.Employee",
        verbose_name=_("owner"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_cost_centres",
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("cost centre")
        verbose_name_plural = _("cost centres")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Department(models.Model):
    """An organisational unit of the administration (Fachbereich, Amt)."""

    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=200)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent department"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )
    cost_centre = models.ForeignKey(
        CostCentre,
        verbose_name=_("cost centre"),
        on_delete=models.PROTECT,
        related_name="departments",
    )
    head = models.ForeignKey(
        "catalogue.Employee",
        verbose_name=_("head"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="headed_departments",
    )
    chargeable_cost_centres = models.ManyToManyField(
        CostCentre,
        verbose_name=_("may also charge"),
        blank=True,
        related_name="chargeable_by_departments",
        help_text=_(
            "Cost centres everyone in this department may charge without the cost-centre "
            "owner's approval, besides their own."
        ),
    )

    class Meta:
        ordering = ["code"]
        verbose_name = _("department")
        verbose_name_plural = _("departments")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class EmployeeQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def with_related(self):
        return self.select_related("user", "department", "cost_centre", "manager__user")


class Employee(models.Model):
    """The employee record of a portal user: who they are in the organisation."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="employee",
    )
    personnel_number = models.CharField(_("personnel number / uid"), max_length=64, unique=True)
    department = models.ForeignKey(
        Department, verbose_name=_("department"), on_delete=models.PROTECT, related_name="employees"
    )
    cost_centre = models.ForeignKey(
        CostCentre,
        verbose_name=_("cost centre"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="employees",
        help_text=_("Leave empty to use the department's cost centre."),
    )
    manager = models.ForeignKey(
        "self",
        verbose_name=_("line manager"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reports",
    )
    chargeable_cost_centres = models.ManyToManyField(
        CostCentre,
        verbose_name=_("may also charge"),
        blank=True,
        related_name="chargeable_by_employees",
        help_text=_(
            "Cost centres this person may charge without the cost-centre owner's approval, "
            "besides their own and their department's list."
        ),
    )
    job_title = models.CharField(_("job title"), max_length=200, blank=True)
    directory_dn = models.CharField(
        _("directory entry"),
        max_length=1000,
        blank=True,
        db_index=True,
        help_text=_("Set by the directory sync; empty for people kept only in the portal."),
    )
    start_date = models.DateField(
        _("start date"),
        null=True,
        blank=True,
        help_text=_(
            "First working day, read by the directory sync; the joiner bundle is "
            "offered as needed from this day."
        ),
    )
    # The directory's own record of the last sign-in (OpenLDAP's lastbind overlay:
    # authTimestamp; Active Directory: lastLogonTimestamp, replicated within ~14 days),
    # read by the sync. The portal's sign-in alone says little about whether an account
    # or a service is used: most people never open the portal once they have what they need.
    directory_last_logon = models.DateTimeField(
        _("last sign-in in the directory"), null=True, blank=True, editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    # Who switched the person off decides who may switch them on: the directory sync
    # re-admits a returning person it deactivated itself, never one the portal deactivated.
    deactivated_by_directory = models.BooleanField(
        _("deactivated by the directory sync"), default=False, editable=False
    )
    # Set by the retention run (privacy/retention.py) when the person's names and
    # identifiers were replaced; department and cost centre stay for the figures.
    anonymised_at = models.DateTimeField(_("anonymised"), null=True, blank=True, editable=False)

    objects = EmployeeQuerySet.as_manager()

    class Meta:
        ordering = ["user__last_name", "user__first_name"]
        verbose_name = _("employee")
        verbose_name_plural = _("employees")

    def __str__(self) -> str:
        return f"{self.display_name} ({self.personnel_number})"

    def clean(self) -> None:
        if self.pk and self.manager_id == self.pk:
            raise ValidationError({"manager": _("An employee cannot be their own line manager.")})
        # Walk up the chain: a cycle would leave approvals without a top.
        seen = {self.pk}
        manager = self.manager
        while self.pk and manager is not None:
            if manager.pk in seen:
                raise ValidationError(
                    {"manager": _("This line manager would create a cycle in the manager chain.")}
                )
            seen.add(manager.pk)
            manager = manager.manager

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    @property
    def effective_cost_centre(self) -> CostCentre:
        """The cost centre charged for this employee's orders."""
        return self.cost_centre or self.department.cost_centre

    def may_charge(self, cost_centre: CostCentre) -> bool:
        """Whether this person may charge ``cost_centre`` without its owner's approval: their
        own, one they own, or one on their or their department's list."""
        if cost_centre.pk == (self.cost_centre_id or self.department.cost_centre_id):
            return True
        if cost_centre.owner_id == self.pk:
            return True
        return CostCentre.objects.filter(
            models.Q(chargeable_by_employees=self)
            | models.Q(chargeable_by_departments=self.department_id),
            pk=cost_centre.pk,
        ).exists()
