"""One provider vocabulary for usage, prices and infrastructure.

The codes are OpenTelemetry's GenAI `gen_ai.provider.name` values, so spans map onto them unchanged;
older conventions (`gen_ai.system`), LiteLLM's `litellm_provider` and the labels people type are
aliases of them. Each provider also names the infrastructure provider it runs on (AWS, Azure, GCP,
on-premises, or other for a vendor's own cloud), which is what "spend by provider" and the
provider-concentration signal group by.
"""

from ops.models import ModelProvider, Provider

# Older OTel values, LiteLLM's `litellm_provider` and genai-prices' provider ids, and common spellings →
# the code above (compared lowercased). Names not here (resellers, routers) are not the vocabulary's.
ALIASES = {
    "az.ai.openai": ModelProvider.AZURE_OPENAI,
    "azure": ModelProvider.AZURE_OPENAI,
    "azure_openai": ModelProvider.AZURE_OPENAI,
    "azure_text": ModelProvider.AZURE_OPENAI,
    "az.ai.inference": ModelProvider.AZURE_INFERENCE,
    "azure_ai": ModelProvider.AZURE_INFERENCE,
    "bedrock": ModelProvider.AWS_BEDROCK,
    "bedrock_converse": ModelProvider.AWS_BEDROCK,
    "aws bedrock": ModelProvider.AWS_BEDROCK,
    "aws": ModelProvider.AWS_BEDROCK,
    "vertex_ai": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-language-models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-anthropic_models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-ai21_models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-chat-models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-code-chat-models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-code-text-models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-embedding-models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-image-models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-llama_models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-mistral_models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-text-models": ModelProvider.GCP_VERTEX_AI,
    "vertex_ai-vision-models": ModelProvider.GCP_VERTEX_AI,
    "gemini": ModelProvider.GCP_GEMINI,
    "google": ModelProvider.GCP_GEN_AI,
    "text-completion-openai": ModelProvider.OPENAI,
    "mistral": ModelProvider.MISTRAL_AI,
    "mistralai": ModelProvider.MISTRAL_AI,
    "codestral": ModelProvider.MISTRAL_AI,
    "text-completion-codestral": ModelProvider.MISTRAL_AI,
    "cohere_chat": ModelProvider.COHERE,
    "xai": ModelProvider.X_AI,
    "x-ai": ModelProvider.X_AI,
    "watsonx": ModelProvider.IBM_WATSONX_AI,
    "ollama": ModelProvider.SELF_HOSTED,
    "vllm": ModelProvider.SELF_HOSTED,
    "hosted_vllm": ModelProvider.SELF_HOSTED,
    "on-premises": ModelProvider.SELF_HOSTED,
}
_LOOKUP = {
    **{code: ModelProvider(code) for code in ModelProvider.values},
    **{label.lower(): ModelProvider(code) for code, label in ModelProvider.choices},
    **ALIASES,
}

INFRASTRUCTURE = {
    ModelProvider.AZURE_OPENAI: Provider.AZURE,
    ModelProvider.AZURE_INFERENCE: Provider.AZURE,
    ModelProvider.AWS_BEDROCK: Provider.AWS,
    ModelProvider.GCP_VERTEX_AI: Provider.GCP,
    ModelProvider.GCP_GEMINI: Provider.GCP,
    ModelProvider.GCP_GEN_AI: Provider.GCP,
    ModelProvider.SELF_HOSTED: Provider.ON_PREMISES,
}


def provider_code(value: str) -> ModelProvider:
    """Return the vocabulary's code for a provider name of any convention; unknown names are `other`."""
    return known_provider(value) or ModelProvider.OTHER


def known_provider(value: str) -> ModelProvider | None:
    """Return the vocabulary's code for a provider name of any convention, or None for a name it does not know."""
    return _LOOKUP.get(value.strip().lower())


def infrastructure_provider(code: str) -> Provider:
    """Return the infrastructure provider a model provider runs on (a vendor's own cloud is `other`)."""
    return INFRASTRUCTURE.get(ModelProvider(code), Provider.OTHER)
