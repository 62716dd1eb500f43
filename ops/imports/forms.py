from django import forms

from ops.imports.jobs import FORMATS
from ops.imports.models import MappingField


class ImportUploadForm(forms.Form):
    format = forms.ChoiceField(choices=[(name, name.upper() if name == "focus" else name) for name in sorted(FORMATS)])
    file = forms.FileField(help_text="The file as exported (CSV). Large files are fine: a worker imports them.")
    source = forms.CharField(
        max_length=200,
        required=False,
        help_text="FOCUS: who issued the bill, when its ProviderName column does not say.",
    )


class BillingRuleForm(forms.Form):
    field = forms.ChoiceField(choices=MappingField.choices, label="When the column")
    value = forms.CharField(max_length=300, label="equals")
    project = forms.ModelChoiceField(queryset=None, label="the row belongs to")

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = organization.projects.filter(archived=False).order_by("name")
