"""A built-in catalogue of common LLM-project risks: a team adds a well-formed one in one click."""

from dataclasses import dataclass, field

from ops.models import NistGenAIRisk as N
from ops.models import OwaspLLMRisk as O
from ops.models import RiskCategory as C


@dataclass(frozen=True)
class CatalogueRisk:
    key: str
    title: str
    category: str
    description: str
    mitigation_plan: str
    likelihood: int
    impact: int
    nist_refs: list[str] = field(default_factory=list)
    owasp_refs: list[str] = field(default_factory=list)


CATALOGUE: dict[str, CatalogueRisk] = {
    r.key: r
    for r in [
        CatalogueRisk(
            "prompt_injection",
            "Prompt injection through user or retrieved content",
            C.SECURITY,
            "Crafted input or retrieved documents make the model ignore its instructions or leak data.",
            "Separate system and user content, filter retrieved text, least-privilege tools, red-team before release.",
            3,
            4,
            [N.INFORMATION_SECURITY],
            [O.LLM01],
        ),
        CatalogueRisk(
            "pii_leakage",
            "Personal data disclosed in model output",
            C.DATA_PRIVACY,
            "Customer or patient data in prompts, context or training data reappears in answers or logs.",
            "Redact PII before prompting, restrict retrieval by user entitlements, scrub logs, DPIA signed off.",
            3,
            5,
            [N.DATA_PRIVACY],
            [O.LLM02],
        ),
        CatalogueRisk(
            "hallucination",
            "Confabulated answers presented as fact",
            C.RELIABILITY,
            "The model states false information with confidence; users act on it.",
            "Ground answers in retrieved sources with citations, evaluate hallucination rate weekly, human review.",
            4,
            4,
            [N.CONFABULATION],
            [O.LLM09],
        ),
        CatalogueRisk(
            "cost_overrun",
            "Inference spend grows faster than usage value",
            C.COST,
            "Token volume, long contexts or retries push spend past budget.",
            "Per-team quotas, caching, smaller models for easy requests, budget alerts at 80%.",
            3,
            3,
            [N.ENVIRONMENTAL],
            [O.LLM10],
        ),
        CatalogueRisk(
            "unbounded_consumption",
            "Abuse drives unbounded token consumption",
            C.SECURITY,
            "Automated or malicious clients send long or many requests (denial of wallet).",
            "Rate limits per user and key, maximum context and output length, anomaly alerts.",
            2,
            4,
            [N.INFORMATION_SECURITY],
            [O.LLM10],
        ),
        CatalogueRisk(
            "eu_ai_act",
            "Obligations of the EU AI Act not met",
            C.COMPLIANCE,
            "The system's risk tier brings duties (risk management, logging, human oversight) not yet in place.",
            "Classify the tier, name a human-oversight owner, keep technical documentation and logs.",
            2,
            5,
            [N.HUMAN_AI_CONFIGURATION],
            [],
        ),
        CatalogueRisk(
            "bias",
            "Unfair outcomes across customer groups",
            C.ETHICS_BIAS,
            "Outputs or recommendations systematically disadvantage a group.",
            "Evaluate by segment, diverse test sets, fairness review before each release.",
            3,
            4,
            [N.HARMFUL_BIAS],
            [],
        ),
        CatalogueRisk(
            "vendor_lock_in",
            "Dependence on a single model provider",
            C.VENDOR_LOCK_IN,
            "Prices, terms or model deprecations of one provider dictate the product.",
            "Abstract the model behind a gateway, keep an evaluated fallback model, portable prompts.",
            3,
            3,
            [N.VALUE_CHAIN],
            [O.LLM03],
        ),
        CatalogueRisk(
            "model_deprecation",
            "Model version deprecated by the provider",
            C.OPERATIONAL,
            "The provider retires the model; behaviour changes on the forced upgrade.",
            "Track deprecation dates, re-run the evaluation suite on the successor, pin versions.",
            3,
            3,
            [N.VALUE_CHAIN],
            [O.LLM03],
        ),
        CatalogueRisk(
            "excessive_agency",
            "Agent takes actions beyond what was intended",
            C.SECURITY,
            "Tools or plugins let the model change data or send messages without confirmation.",
            "Least-privilege tools, human confirmation for writes, audit every tool call.",
            2,
            5,
            [N.INFORMATION_SECURITY],
            [O.LLM06],
        ),
        CatalogueRisk(
            "training_data_poisoning",
            "Poisoned fine-tuning or retrieval data",
            C.SECURITY,
            "Manipulated documents or training samples bias or backdoor the model.",
            "Provenance checks on data sources, review of fine-tuning sets, monitor retrieval corpus changes.",
            2,
            4,
            [N.INFORMATION_INTEGRITY],
            [O.LLM04],
        ),
        CatalogueRisk(
            "copyright",
            "Generated content infringes third-party rights",
            C.COMPLIANCE,
            "Outputs reproduce protected text, code or images.",
            "Licensed training data, output similarity filters, legal review for published content.",
            2,
            4,
            [N.INTELLECTUAL_PROPERTY],
            [],
        ),
    ]
}
