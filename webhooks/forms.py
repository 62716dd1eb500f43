from django import forms

from webhooks.models import EndpointKind, EventType


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(
        label="URL", max_length=2000, assume_scheme="https", help_text="http(s) only; public addresses."
    )
    kind = forms.ChoiceField(choices=EndpointKind.choices, initial=EndpointKind.STANDARD)
    description = forms.CharField(max_length=300, required=False)
    events = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple, initial=list(EventType.values)
    )
