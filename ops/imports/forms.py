"""The imports pages' forms: an upload of any format, the CSV page's file and column mapping, a bill mapping rule."""

from django import forms

from ops.imports.csv_costs import FIELDS
from ops.imports.jobs import FORMATS
from ops.imports.models import ImportFormat, MappingField
from projects.models import Organization, Project

MAX_FILE_BYTES = 5 * 1024 * 1024  # the CSV page's previewed file: well above 10,000 rows of costs
FIELD_LABELS = {
    "project": "Project (slug or id)",
    "date": "Date (YYYY-MM-DD)",
    "category": "Category",
    "amount": "Amount",
    "currency": "Currency (ISO 4217, default the organization's)",
    "description": "Description",
    "model": "Model",
    "input_tokens": "Input tokens",
    "cached_input_tokens": "Cached input tokens",
    "output_tokens": "Output tokens",
    "requests": "Requests",
    "gpu_hours": "GPU hours",
    "energy_kwh": "Energy (kWh)",
    "external_id": "External id (a resent id is skipped)",
}
FIELD_CHOICES = [("", "— not imported —"), *((name, FIELD_LABELS[name]) for name in FIELDS)]


def _projects(organization: Organization):
    return Project.objects.filter(organization=organization, archived=False).order_by("name")


def _default_project(help_text: str) -> forms.ModelChoiceField:
    """The project of a cost file's rows that name none (its choices are set per organization)."""
    return forms.ModelChoiceField(
        queryset=Project.objects.none(),
        required=False,
        to_field_name="slug",
        empty_label="— from a column of the file —",
        help_text=help_text,
    )


class ImportUploadForm(forms.Form):
    format = forms.ChoiceField(choices=[(name, ImportFormat(name).label) for name in FORMATS])
    file = forms.FileField(help_text="The file as exported (CSV). Large files are fine: a worker imports them.")
    source = forms.CharField(
        max_length=200,
        required=False,
        help_text="FOCUS: who issued the bill, when its ProviderName column does not say.",
    )
    project = _default_project("Cost entries: the project of rows without a project column.")

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = _projects(organization)

    def options(self) -> dict[str, str]:
        """Return the import options the form sets (`ops.imports.jobs.IMPORT_OPTIONS`)."""
        project = self.cleaned_data["project"]
        options = {"source": self.cleaned_data["source"].strip(), "project": project.slug if project else ""}
        return {name: value for name, value in options.items() if value}


class BillingRuleForm(forms.Form):
    field = forms.ChoiceField(choices=MappingField.choices, label="When the column")
    value = forms.CharField(max_length=300, label="equals")
    project = forms.ModelChoiceField(queryset=None, label="the row belongs to")

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = _projects(organization)


class CsvUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8, a header line, at most 10,000 rows.")
    project = _default_project("The project of rows without a project column.")

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = _projects(organization)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(f"At most {MAX_FILE_BYTES // (1024 * 1024)} MB.")
        return upload


class CsvMappingForm(forms.Form):
    """One choice per column of the file: the cost entry field it fills, or none."""

    token = forms.CharField(widget=forms.HiddenInput)
    project = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, header: list[str], mapping: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.columns = header
        for index, column in enumerate(header):
            self.fields[f"column_{index}"] = forms.ChoiceField(
                label=column or f"Column {index + 1}",
                choices=FIELD_CHOICES,
                required=False,
                initial=mapping.get(column, ""),
            )

    def mapping(self) -> dict[str, str]:
        """Return {column: field} as chosen (columns not imported map to "")."""
        return {column: self.cleaned_data.get(f"column_{index}", "") for index, column in enumerate(self.columns)}
