"""The provider vocabulary: OTel codes, older conventions, LiteLLM names and labels map onto one code."""

import pytest

from ops.models import ModelProvider, Provider
from ops.providers import infrastructure_provider, provider_code


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("openai", ModelProvider.OPENAI),
        ("OpenAI", ModelProvider.OPENAI),
        ("az.ai.openai", ModelProvider.AZURE_OPENAI),  # gen_ai.system before the rename
        ("azure.ai.openai", ModelProvider.AZURE_OPENAI),
        ("bedrock", ModelProvider.AWS_BEDROCK),  # litellm_provider
        ("AWS Bedrock", ModelProvider.AWS_BEDROCK),
        ("vertex_ai", ModelProvider.GCP_VERTEX_AI),
        (" Anthropic ", ModelProvider.ANTHROPIC),
        ("somebody else", ModelProvider.OTHER),
    ],
)
def test_every_convention_maps_to_one_code(name, code):
    assert provider_code(name) == code


def test_each_model_provider_names_the_infrastructure_it_runs_on():
    assert infrastructure_provider("aws.bedrock") == Provider.AWS
    assert infrastructure_provider("azure.ai.openai") == Provider.AZURE
    assert infrastructure_provider("gcp.gemini") == Provider.GCP
    assert infrastructure_provider("self_hosted") == Provider.ON_PREMISES
    assert infrastructure_provider("openai") == Provider.OTHER
