"""The demo portfolio of `seed_demo`: Northwind Group, a fictional holding that runs LLM projects.

The curated part goes through the services, so it obeys the same rules as data entered in the UI;
only history (dates in the past) is written afterwards, explicitly. Its story: data privacy, cost
management and hallucinations are the problems that keep coming back.

`synthetic_seed` adds load-test projects in bulk; see its docstring.
"""

import datetime as dt
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ops.catalogue import CATALOGUE
from ops.models import (
    Budget,
    ComponentKind,
    CostCategory,
    CostEntry,
    CostSource,
    Environment,
    Hosting,
    InfrastructureComponent,
    MetricKind,
    ModelPrice,
    ModelSource,
    Provider,
    QualityMetric,
    Risk,
    RiskAssessment,
    RiskCategory,
    RiskSource,
    RiskStatus,
    Treatment,
)
from ops.selectors.portfolio import usage_price
from ops.services import (
    budget_create,
    cost_entry_create,
    infrastructure_component_create,
    model_price_create,
    quality_metric_create,
    risk_accept,
    risk_close,
    risk_create,
    risk_update,
)
from projects.audit import audit_record_created
from projects.models import (
    AIActTier,
    DataClassification,
    Health,
    Industry,
    Membership,
    Organization,
    Project,
    Role,
    Stage,
    StageTransition,
    StatusUpdate,
    Team,
    UseCase,
)
from projects.selectors import project_gates
from projects.services import organization_create, project_create, project_transition, status_update_create

User = get_user_model()

ORG_NAME, ORG_SLUG = "Northwind Group", "northwind-group"
CENT = Decimal("0.01")

# One login per role. None is a platform superuser unless asked (`seed_demo --superuser`): an
# organization's admin manages its members, the Django admin is the platform operators' tool.
DEMO_USERS = [
    ("demo-viewer", Role.VIEWER, "Vera", "Lind"),
    ("demo-contributor", Role.CONTRIBUTOR, "Colin", "Baptiste"),
    ("demo-manager", Role.MANAGER, "Mira", "Halvorsen"),
    ("demo-admin", Role.ADMIN, "Ada", "Mensah"),
]
# People who own and lead projects; they cannot sign in (unusable passwords).
PERSONAS = [
    ("amara.okafor", Role.MANAGER, "Amara", "Okafor"),
    ("jonas.weber", Role.CONTRIBUTOR, "Jonas", "Weber"),
    ("sofia.marin", Role.MANAGER, "Sofia", "Marin"),
    ("daniel.price", Role.CONTRIBUTOR, "Daniel", "Price"),
    ("hannah.lindqvist", Role.CONTRIBUTOR, "Hannah", "Lindqvist"),
    ("rafael.costa", Role.MANAGER, "Rafael", "Costa"),
]
TEAMS = {
    "cx": ("Customer Experience", "Chatbots and support automation for Northwind Retail and ShopLoom."),
    "capital": ("Northwind Capital Analytics", "Research and advice tools of the investment and retail bank."),
    "health": ("Clinical AI", "St. Aldric Hospital and Helix Therapeutics."),
    "media": ("Daily Ledger Newsroom", "Editorial tools of the group's newspaper."),
    "platform": ("AI Platform", "Shared inference, the coding assistant and the model gateway."),
    "growth": ("Personalisation & Growth", "Recommendations, CRM and the Tunewave music service."),
}


@dataclass(frozen=True)
class PriceSpec:
    provider: str
    model: str
    input: str
    cached: str | None
    output: str
    valid_days_ago: int
    deprecation_in_days: int | None = None


# Prices per million tokens. gpt-4o's price was cut mid-year: older costs keep the old price.
PRICES = [
    PriceSpec("Azure OpenAI", "gpt-4o", "5.00", "2.50", "15.00", 500),
    PriceSpec("Azure OpenAI", "gpt-4o", "2.50", "1.25", "10.00", 200, deprecation_in_days=75),
    PriceSpec("Azure OpenAI", "gpt-4o-mini", "0.15", "0.075", "0.60", 500),
    PriceSpec("Azure OpenAI", "text-embedding-3-large", "0.13", None, "0", 500),
    PriceSpec("AWS Bedrock", "claude-sonnet-4", "3.00", "0.30", "15.00", 500),
    PriceSpec("AWS Bedrock", "claude-haiku-3.5", "0.80", "0.08", "4.00", 500),
    PriceSpec("Anthropic", "claude-sonnet-4-api", "3.00", "0.30", "15.00", 500),
    PriceSpec("Google Vertex AI", "gemini-2.5-pro", "1.25", "0.31", "10.00", 500),
    PriceSpec("Google Vertex AI", "gemini-2.5-flash", "0.30", "0.075", "2.50", 500),
    # Open weights on our own GPUs: tokens are free, the GPUs are costed monthly as compute.
    PriceSpec("On-premises", "llama-3.1-70b-instruct", "0", "0", "0", 500),
    PriceSpec("On-premises", "llama-3.1-8b-instruct", "0", "0", "0", 500),
]


@dataclass(frozen=True)
class Usage:
    """Daily token volume of one model at full (production) traffic."""

    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    growth: float = 1.0  # traffic multiplier reached by today (cost story)


@dataclass(frozen=True)
class RiskSpec:
    key: str  # a catalogue key
    weeks_ago: int = 30
    status: str = RiskStatus.OPEN
    likelihood: int | None = None
    impact: int | None = None
    title: str = ""
    review_in_days: int = 30  # negative: the review is overdue
    reassess: tuple[int, int, int, str] | None = None  # weeks ago, likelihood, impact, note
    note: str = ""  # why it was accepted or closed
    no_plan: bool = False


@dataclass(frozen=True)
class Incident:
    from_days_ago: int
    to_days_ago: int
    health: str
    summary: str
    blockers: str = ""


@dataclass(frozen=True)
class ProjectSpec:
    name: str
    slug: str
    summary: str
    team: str
    industry: str
    use_case: str
    classification: str
    tier: str
    lead: str
    owner: str
    started_days_ago: int
    # Each later stage and how many days ago it was entered; a backward move carries a note.
    path: list[tuple[str, int] | tuple[str, int, str]]
    infra: list[dict]
    usage: list[Usage] = field(default_factory=list)
    monthly_people: int = 20000
    budget_factor: float = 1.25  # budget ÷ forecast spend: below 1 tells a cost-overrun story
    risks: list[RiskSpec] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    quality: tuple[float, float, float, float, int] = (0.82, 0.92, 0.08, 0.03, 1800)  # accuracy, halluc., p95
    oversight: str = ""
    # Stages entered before their gates were met, with the manager's justification.
    overrides: dict[str, str] = field(default_factory=dict)
    metrics_after_transitions: bool = False


def _c(name, kind, provider, hosting=Hosting.CLOUD, **kw) -> dict:
    return {"name": name, "kind": kind, "provider": provider, "hosting": hosting, **kw}


FM, FT, VS, ORCH, COMP, PIPE, MON = (
    ComponentKind.FOUNDATION_MODEL,
    ComponentKind.FINE_TUNED_MODEL,
    ComponentKind.VECTOR_STORE,
    ComponentKind.ORCHESTRATION,
    ComponentKind.COMPUTE,
    ComponentKind.DATA_PIPELINE,
    ComponentKind.MONITORING,
)
PROD, STAGING, DEV = Environment.PRODUCTION, Environment.STAGING, Environment.DEV
S = Stage

PROJECTS: list[ProjectSpec] = [
    ProjectSpec(
        "Ask Aria — customer support assistant",
        "ask-aria",
        "Answers Northwind Retail customers' order, return and delivery questions in chat and e-mail, "
        "hands over to an agent when unsure. Replaced the rule-based FAQ bot.",
        "cx",
        Industry.RETAIL,
        UseCase.CUSTOMER_SUPPORT,
        DataClassification.PERSONAL,
        AIActTier.LIMITED,
        "jonas.weber",
        "amara.okafor",
        560,
        [(S.DATA_PREPARATION, 520), (S.DEVELOPMENT, 470), (S.EVALUATION, 400), (S.PILOT, 340), (S.PRODUCTION, 250)],
        [
            _c(
                "Claude Sonnet on Bedrock",
                FM,
                Provider.AWS,
                region="eu-central-1",
                environment=PROD,
                model_name="claude-sonnet-4",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LangChain"],
            ),
            _c(
                "Order knowledge base",
                VS,
                Provider.AWS,
                region="eu-central-1",
                environment=PROD,
                frameworks=["LangChain", "pgvector"],
            ),
            _c("Conversation orchestration", ORCH, Provider.AWS, environment=PROD, frameworks=["LangChain"]),
            _c("Answer quality monitoring", MON, Provider.OTHER, environment=PROD, frameworks=["Langfuse"]),
        ],
        usage=[Usage("claude-sonnet-4", 9000, 2600, 350, growth=2.6), Usage("claude-haiku-3.5", 6000, 900, 120)],
        monthly_people=38000,
        budget_factor=0.82,
        risks=[
            RiskSpec(
                "pii_leakage",
                60,
                RiskStatus.MITIGATING,
                4,
                5,
                review_in_days=14,
                reassess=(20, 3, 5, "Redaction of card and phone numbers live; addresses still pass."),
            ),
            RiskSpec(
                "cost_overrun",
                40,
                RiskStatus.OPEN,
                4,
                4,
                review_in_days=-12,
                reassess=(8, 5, 4, "Holiday traffic: inference 35% over the monthly budget."),
            ),
            RiskSpec(
                "hallucination", 55, RiskStatus.MITIGATING, 3, 4, title="Invented return policies quoted to customers"
            ),
            RiskSpec("prompt_injection", 30, RiskStatus.OPEN, review_in_days=20),
            RiskSpec(
                "vendor_lock_in",
                45,
                RiskStatus.ACCEPTED,
                3,
                2,
                note="Bedrock hosts two model families; a switch takes a sprint. Revisit at contract renewal.",
            ),
        ],
        incidents=[
            Incident(
                200,
                186,
                Health.RED,
                "Customer addresses found in chat transcripts sent to the vendor's logs.",
                "Logging paused; DPO review of transcript retention.",
            ),
            Incident(
                70,
                14,
                Health.AMBER,
                "Inference spend above budget since the holiday peak.",
                "Budget increase needs CFO sign-off; caching of order lookups in progress.",
            ),
        ],
        quality=(0.84, 0.93, 0.07, 0.025, 2100),
    ),
    ProjectSpec(
        "Newsroom Copilot",
        "newsroom-copilot",
        "Drafts briefs, headlines and summaries from wire copy for the Daily Ledger's editors; every "
        "draft is edited by a journalist before publication.",
        "media",
        Industry.MEDIA,
        UseCase.CONTENT_GENERATION,
        DataClassification.INTERNAL,
        AIActTier.LIMITED,
        "hannah.lindqvist",
        "rafael.costa",
        480,
        [
            (S.DATA_PREPARATION, 450),
            (S.DEVELOPMENT, 410),
            (S.EVALUATION, 360),
            (S.PILOT, 320),
            (S.DEVELOPMENT, 290, "Pilot drafts attributed invented quotes to real people; back to prompt work."),
            (S.EVALUATION, 220),
            (S.PILOT, 180),
            (S.PRODUCTION, 110),
        ],
        [
            _c(
                "GPT-4o on Azure OpenAI",
                FM,
                Provider.AZURE,
                region="westeurope",
                environment=PROD,
                model_name="gpt-4o",
                model_version="2024-08-06",
                model_source=ModelSource.HOSTED_API,
                frameworks=["Semantic Kernel"],
            ),
            _c(
                "Wire ingestion",
                PIPE,
                Provider.AZURE,
                region="westeurope",
                environment=PROD,
                frameworks=["Azure Functions"],
            ),
            _c(
                "Archive search index",
                VS,
                Provider.AZURE,
                region="westeurope",
                environment=PROD,
                frameworks=["Azure AI Search"],
            ),
        ],
        usage=[Usage("gpt-4o", 2500, 3800, 700), Usage("text-embedding-3-large", 5000, 800, 0)],
        monthly_people=26000,
        risks=[
            RiskSpec(
                "hallucination",
                44,
                RiskStatus.MITIGATING,
                4,
                5,
                title="Fabricated quotes in drafted articles",
                reassess=(12, 2, 5, "Quote checker blocks unsourced quotation marks."),
            ),
            RiskSpec("copyright", 35, RiskStatus.OPEN),
            RiskSpec(
                "model_deprecation",
                10,
                RiskStatus.OPEN,
                4,
                3,
                title="gpt-4o 2024-08-06 retires within three months",
                review_in_days=10,
            ),
            RiskSpec("bias", 30, RiskStatus.CLOSED, note="Quarterly audit of headline tone found no skew by region."),
        ],
        incidents=[
            Incident(
                320,
                290,
                Health.RED,
                "Invented quotes in pilot drafts; pilot stopped.",
                "Editors lost trust; quote verification needed before restart.",
            )
        ],
        quality=(0.78, 0.9, 0.12, 0.02, 4200),
    ),
    ProjectSpec(
        "Market Pulse",
        "market-pulse",
        "Summarises earnings calls, filings and news into daily sector trend notes for Northwind Capital's "
        "research desk.",
        "capital",
        Industry.FINANCE,
        UseCase.DATA_ANALYSIS,
        DataClassification.CONFIDENTIAL,
        AIActTier.MINIMAL,
        "daniel.price",
        "rafael.costa",
        330,
        [(S.DATA_PREPARATION, 300), (S.DEVELOPMENT, 250), (S.EVALUATION, 160), (S.PILOT, 75)],
        [
            _c(
                "GPT-4o long-context analysis",
                FM,
                Provider.AZURE,
                region="eastus2",
                environment=STAGING,
                model_name="gpt-4o",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LlamaIndex"],
            ),
            _c(
                "Filings corpus",
                VS,
                Provider.AZURE,
                region="eastus2",
                environment=STAGING,
                frameworks=["LlamaIndex", "Qdrant"],
            ),
            _c("Market data feed", PIPE, Provider.OTHER, environment=STAGING, frameworks=["Airflow"]),
        ],
        usage=[Usage("gpt-4o", 900, 42000, 1500, growth=1.8)],
        monthly_people=30000,
        budget_factor=0.9,
        risks=[
            RiskSpec("cost_overrun", 20, RiskStatus.OPEN, 4, 4, title="Long filings make every request expensive"),
            RiskSpec(
                "hallucination", 30, RiskStatus.MITIGATING, 3, 5, title="Wrong figures in trend notes read by traders"
            ),
            RiskSpec(
                "eu_ai_act", 25, RiskStatus.CLOSED, note="Internal research aid, minimal tier confirmed by legal."
            ),
            RiskSpec("vendor_lock_in", 20, RiskStatus.OPEN, review_in_days=-20),
        ],
        incidents=[
            Incident(
                40,
                0,
                Health.AMBER,
                "Spend per note is three times the estimate: whole filings sent.",
                "Chunking and retrieval to replace full-document prompts.",
            )
        ],
        quality=(0.8, 0.88, 0.09, 0.04, 9000),
    ),
    ProjectSpec(
        "Sentinel — real-time fraud signals",
        "sentinel-fraud",
        "Explains card-transaction anomalies to Northwind Bank's fraud analysts in real time, using an "
        "on-premises Llama model next to the scoring engine (no customer data leaves the bank).",
        "capital",
        Industry.FINANCE,
        UseCase.FRAUD_DETECTION,
        DataClassification.SENSITIVE_PERSONAL,
        AIActTier.HIGH,
        "daniel.price",
        "rafael.costa",
        300,
        [(S.DATA_PREPARATION, 270), (S.DEVELOPMENT, 200), (S.EVALUATION, 45)],
        [
            _c(
                "Llama 3.1 70B on vLLM",
                FM,
                Provider.ON_PREMISES,
                Hosting.LOCAL,
                region="Frankfurt DC2",
                environment=STAGING,
                model_name="llama-3.1-70b-instruct",
                model_source=ModelSource.OPEN_WEIGHTS,
                frameworks=["vLLM", "Transformers"],
                gpu_type="NVIDIA H100 80GB",
                gpu_count=8,
            ),
            _c(
                "Transaction stream",
                PIPE,
                Provider.ON_PREMISES,
                Hosting.LOCAL,
                environment=STAGING,
                frameworks=["Kafka", "Flink"],
            ),
            _c(
                "GPU cluster",
                COMP,
                Provider.ON_PREMISES,
                Hosting.LOCAL,
                environment=STAGING,
                gpu_type="NVIDIA H100 80GB",
                gpu_count=8,
            ),
        ],
        usage=[Usage("llama-3.1-70b-instruct", 40000, 1200, 200)],
        monthly_people=42000,
        oversight="rafael.costa",
        risks=[
            RiskSpec("eu_ai_act", 30, RiskStatus.MITIGATING, 3, 5, title="High-risk credit-related decisions"),
            RiskSpec(
                "bias",
                25,
                RiskStatus.OPEN,
                4,
                5,
                title="False fraud flags concentrated on young customers",
                no_plan=True,
                review_in_days=7,
            ),
            RiskSpec("training_data_poisoning", 20, RiskStatus.OPEN),
            RiskSpec("pii_leakage", 28, RiskStatus.MITIGATING, 2, 5),
        ],
        quality=(0.86, 0.94, 0.05, 0.02, 350),
    ),
    ProjectSpec(
        "Compass robo-advisor",
        "compass-robo-advisor",
        "Explains portfolio proposals to Northwind Bank's retail investors in plain language, within the "
        "suitability rules of the advice engine.",
        "capital",
        Industry.FINANCE,
        UseCase.PERSONALIZATION,
        DataClassification.PERSONAL,
        AIActTier.HIGH,
        "daniel.price",
        "amara.okafor",
        210,
        [(S.DATA_PREPARATION, 180), (S.DEVELOPMENT, 100)],
        [
            _c(
                "Gemini 2.5 Pro on Vertex AI",
                FM,
                Provider.GCP,
                region="europe-west3",
                environment=DEV,
                model_name="gemini-2.5-pro",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LangChain"],
            ),
            _c("Suitability rules service", ORCH, Provider.GCP, region="europe-west3", environment=DEV),
        ],
        usage=[Usage("gemini-2.5-pro", 3000, 2000, 500)],
        monthly_people=28000,
        risks=[
            RiskSpec("eu_ai_act", 20, RiskStatus.OPEN, 3, 5, review_in_days=-5),
            RiskSpec("hallucination", 12, RiskStatus.OPEN, 3, 5, title="Advice that contradicts the suitability check"),
            RiskSpec("excessive_agency", 10, RiskStatus.OPEN),
        ],
        quality=(0.7, 0.83, 0.1, 0.06, 2500),
    ),
    ProjectSpec(
        "ScribeCare clinical notes",
        "scribecare",
        "Drafts discharge letters and visit notes from clinician dictation at St. Aldric Hospital; a "
        "clinician signs every note. Speech runs on the hospital's GPUs, drafting in Azure (EU).",
        "health",
        Industry.HEALTHCARE,
        UseCase.CLINICAL_DOCUMENTATION,
        DataClassification.SENSITIVE_PERSONAL,
        AIActTier.HIGH,
        "hannah.lindqvist",
        "sofia.marin",
        400,
        [(S.DATA_PREPARATION, 360), (S.DEVELOPMENT, 280), (S.EVALUATION, 170), (S.PILOT, 95)],
        [
            _c(
                "Whisper speech-to-text",
                FM,
                Provider.ON_PREMISES,
                Hosting.HYBRID,
                region="St. Aldric DC",
                environment=STAGING,
                model_name="whisper-large-v3",
                model_source=ModelSource.OPEN_WEIGHTS,
                frameworks=["Transformers"],
                gpu_type="NVIDIA L40S",
                gpu_count=2,
            ),
            _c(
                "GPT-4o drafting (EU data zone)",
                FM,
                Provider.AZURE,
                Hosting.HYBRID,
                region="swedencentral",
                environment=STAGING,
                model_name="gpt-4o",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LangChain"],
            ),
            _c(
                "De-identification pipeline",
                PIPE,
                Provider.ON_PREMISES,
                Hosting.LOCAL,
                environment=STAGING,
                frameworks=["Presidio"],
            ),
        ],
        usage=[Usage("gpt-4o", 1800, 3500, 900)],
        monthly_people=34000,
        oversight="sofia.marin",
        overrides={
            S.PILOT: "Pilot with 12 clinicians approved by the CMIO: the acceptance metrics are measured "
            "in the pilot itself, every note is signed by a clinician."
        },
        metrics_after_transitions=True,
        risks=[
            RiskSpec(
                "pii_leakage",
                50,
                RiskStatus.MITIGATING,
                4,
                5,
                title="Patient data sent to the cloud model",
                reassess=(15, 2, 5, "De-identification before drafting; re-identification only on-prem."),
            ),
            RiskSpec("hallucination", 40, RiskStatus.MITIGATING, 4, 5, title="Medication doses invented in letters"),
            RiskSpec("eu_ai_act", 45, RiskStatus.OPEN, review_in_days=-30),
            RiskSpec("bias", 20, RiskStatus.OPEN, 2, 4, title="Lower accuracy for non-native speakers' dictation"),
        ],
        incidents=[
            Incident(
                130,
                100,
                Health.AMBER,
                "Dose errors in 3% of drafted letters during evaluation.",
                "Structured medication list from the EHR instead of free text.",
            )
        ],
        quality=(0.81, 0.95, 0.06, 0.01, 6000),
    ),
    ProjectSpec(
        "Helix literature miner",
        "helix-literature-miner",
        "Extracts target–disease evidence from papers and patents for Helix Therapeutics' discovery teams.",
        "health",
        Industry.HEALTHCARE,
        UseCase.RESEARCH,
        DataClassification.CONFIDENTIAL,
        AIActTier.MINIMAL,
        "jonas.weber",
        "sofia.marin",
        350,
        [(S.DATA_PREPARATION, 320), (S.DEVELOPMENT, 230), (S.EVALUATION, 60)],
        [
            _c(
                "Gemini 2.5 Flash extraction",
                FM,
                Provider.GCP,
                region="us-central1",
                environment=STAGING,
                model_name="gemini-2.5-flash",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LangChain"],
            ),
            _c(
                "BioBERT fine-tune",
                FT,
                Provider.GCP,
                region="us-central1",
                environment=STAGING,
                model_name="biobert-helix",
                model_source=ModelSource.FINE_TUNED,
                frameworks=["Transformers"],
                gpu_type="NVIDIA A100 40GB",
                gpu_count=4,
            ),
            _c(
                "Paper corpus",
                VS,
                Provider.GCP,
                region="us-central1",
                environment=STAGING,
                frameworks=["Vertex AI Vector Search"],
            ),
        ],
        usage=[Usage("gemini-2.5-flash", 12000, 6000, 400)],
        monthly_people=24000,
        risks=[
            RiskSpec("hallucination", 30, RiskStatus.OPEN, 4, 4, title="Evidence cited from papers that do not say it"),
            RiskSpec(
                "copyright",
                25,
                RiskStatus.ACCEPTED,
                2,
                3,
                note="Publisher licences cover text mining; outputs stay internal.",
            ),
            RiskSpec("training_data_poisoning", 20, RiskStatus.CLOSED, note="Only peer-reviewed sources are ingested."),
        ],
        quality=(0.74, 0.86, 0.11, 0.05, 5200),
    ),
    ProjectSpec(
        "Basket recommendations",
        "basket-recommendations",
        "Suggests complementary products in Northwind Retail's app and explains each suggestion in a sentence.",
        "growth",
        Industry.RETAIL,
        UseCase.RECOMMENDATION,
        DataClassification.PERSONAL,
        AIActTier.MINIMAL,
        "jonas.weber",
        "amara.okafor",
        600,
        [(S.DATA_PREPARATION, 570), (S.DEVELOPMENT, 520), (S.EVALUATION, 450), (S.PILOT, 400), (S.PRODUCTION, 330)],
        [
            _c(
                "Gemini 2.5 Flash explanations",
                FM,
                Provider.GCP,
                region="europe-west1",
                environment=PROD,
                model_name="gemini-2.5-flash",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LangChain"],
            ),
            _c(
                "Product embeddings",
                VS,
                Provider.GCP,
                region="europe-west1",
                environment=PROD,
                frameworks=["BigQuery Vector Search"],
            ),
            _c(
                "Clickstream pipeline",
                PIPE,
                Provider.GCP,
                region="europe-west1",
                environment=PROD,
                frameworks=["Dataflow"],
            ),
        ],
        usage=[Usage("gemini-2.5-flash", 60000, 700, 60)],
        monthly_people=22000,
        risks=[
            RiskSpec(
                "pii_leakage", 60, RiskStatus.MITIGATING, 2, 4, title="Purchase history inferred from suggestions"
            ),
            RiskSpec(
                "bias",
                50,
                RiskStatus.ACCEPTED,
                2,
                2,
                note="Popularity bias limited by a diversity re-ranker; reviewed each quarter.",
            ),
            RiskSpec("unbounded_consumption", 30, RiskStatus.CLOSED, note="Per-session rate limit deployed."),
        ],
        quality=(0.88, 0.93, 0.03, 0.015, 450),
    ),
    ProjectSpec(
        "ShopLoom merchant assist",
        "shoploom-merchant-assist",
        "Answers merchants' questions about payouts, listings and disputes on the ShopLoom marketplace and "
        "drafts replies for the support team.",
        "cx",
        Industry.RETAIL,
        UseCase.CUSTOMER_SUPPORT,
        DataClassification.PERSONAL,
        AIActTier.LIMITED,
        "jonas.weber",
        "amara.okafor",
        280,
        [(S.DATA_PREPARATION, 250), (S.DEVELOPMENT, 200), (S.EVALUATION, 120), (S.PILOT, 50)],
        [
            _c(
                "Claude Haiku on Bedrock",
                FM,
                Provider.AWS,
                region="us-east-1",
                environment=STAGING,
                model_name="claude-haiku-3.5",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LangChain"],
            ),
            _c(
                "Help-centre index",
                VS,
                Provider.AWS,
                region="us-east-1",
                environment=STAGING,
                frameworks=["OpenSearch"],
            ),
            _c(
                "Ticket integration",
                ORCH,
                Provider.AWS,
                region="us-east-1",
                environment=STAGING,
                frameworks=["LangGraph"],
            ),
        ],
        usage=[Usage("claude-haiku-3.5", 8000, 1800, 300), Usage("gpt-4.1-mini", 400, 1500, 300)],
        monthly_people=18000,
        risks=[
            RiskSpec(
                "excessive_agency",
                20,
                RiskStatus.OPEN,
                3,
                5,
                title="Refunds issued by the agent without review",
                review_in_days=5,
            ),
            RiskSpec("pii_leakage", 25, RiskStatus.MITIGATING, 3, 4),
            RiskSpec("prompt_injection", 15, RiskStatus.OPEN, 4, 4, title="Merchants inject instructions via listings"),
        ],
        incidents=[
            Incident(
                20,
                0,
                Health.AMBER,
                "Usage of gpt-4.1-mini in a side experiment has no price recorded.",
                "Finance to add the model price; the costs are unpriced meanwhile.",
            )
        ],
        quality=(0.8, 0.89, 0.07, 0.04, 1600),
    ),
    ProjectSpec(
        "DevPilot coding assistant",
        "devpilot",
        "Code completion, review comments and test generation for Northwind's 600 engineers, through the "
        "group's model gateway.",
        "platform",
        Industry.TECHNOLOGY,
        UseCase.CODING_ASSISTANT,
        DataClassification.CONFIDENTIAL,
        AIActTier.MINIMAL,
        "hannah.lindqvist",
        "rafael.costa",
        520,
        [(S.DATA_PREPARATION, 500), (S.DEVELOPMENT, 470), (S.EVALUATION, 420), (S.PILOT, 380), (S.PRODUCTION, 300)],
        [
            _c(
                "Claude Sonnet via Anthropic API",
                FM,
                Provider.OTHER,
                region="us",
                environment=PROD,
                model_name="claude-sonnet-4-api",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LiteLLM"],
            ),
            _c("Model gateway", ORCH, Provider.OTHER, Hosting.HYBRID, environment=PROD, frameworks=["LiteLLM"]),
            _c("Usage dashboards", MON, Provider.OTHER, environment=PROD, frameworks=["Grafana"]),
        ],
        usage=[Usage("claude-sonnet-4-api", 15000, 3000, 250, growth=1.7)],
        monthly_people=16000,
        risks=[
            RiskSpec(
                "pii_leakage", 40, RiskStatus.MITIGATING, 3, 4, title="Secrets and customer data pasted into prompts"
            ),
            RiskSpec("copyright", 35, RiskStatus.ACCEPTED, 2, 3, note="Vendor indemnity covers generated code."),
            RiskSpec("vendor_lock_in", 30, RiskStatus.MITIGATING, 3, 3),
            RiskSpec("cost_overrun", 15, RiskStatus.OPEN, 3, 4, title="Seats grow faster than the licence budget"),
        ],
        quality=(0.83, 0.9, 0.06, 0.03, 900),
    ),
    ProjectSpec(
        "CRM insights",
        "crm-insights",
        "Summarises account history and suggests next best actions for Northwind's B2B sales team.",
        "growth",
        Industry.TECHNOLOGY,
        UseCase.DATA_ANALYSIS,
        DataClassification.PERSONAL,
        AIActTier.LIMITED,
        "daniel.price",
        "amara.okafor",
        150,
        [(S.DATA_PREPARATION, 90)],
        [
            _c(
                "Azure OpenAI (planned)",
                FM,
                Provider.AZURE,
                region="westeurope",
                environment=DEV,
                model_name="gpt-4o-mini",
                model_source=ModelSource.HOSTED_API,
            ),
            _c("CRM export", PIPE, Provider.AZURE, region="westeurope", environment=DEV, frameworks=["Fabric"]),
        ],
        monthly_people=12000,
        risks=[
            RiskSpec(
                "pii_leakage",
                10,
                RiskStatus.OPEN,
                4,
                4,
                title="Contact notes include personal opinions",
                review_in_days=-3,
            ),
            RiskSpec("vendor_lock_in", 8, RiskStatus.OPEN, 2, 3),
        ],
        incidents=[
            Incident(
                60,
                30,
                Health.AMBER,
                "Legal basis for using sales notes is unclear.",
                "Waiting for the DPO's assessment.",
            )
        ],
    ),
    ProjectSpec(
        "Tunewave playlist personalisation",
        "tunewave-playlists",
        "Generates themed playlists and their descriptions from listening history for Tunewave subscribers.",
        "growth",
        Industry.MEDIA,
        UseCase.PERSONALIZATION,
        DataClassification.PERSONAL,
        AIActTier.MINIMAL,
        "jonas.weber",
        "amara.okafor",
        240,
        [(S.DATA_PREPARATION, 210), (S.DEVELOPMENT, 140)],
        [
            _c(
                "Claude Haiku for descriptions",
                FM,
                Provider.AWS,
                region="us-west-2",
                environment=DEV,
                model_name="claude-haiku-3.5",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LangChain"],
            ),
            _c("Track embeddings", VS, Provider.AWS, region="us-west-2", environment=DEV, frameworks=["FAISS"]),
        ],
        usage=[Usage("claude-haiku-3.5", 20000, 600, 120)],
        monthly_people=15000,
        risks=[
            RiskSpec("bias", 12, RiskStatus.OPEN, 3, 3, title="Playlists favour major-label artists"),
            RiskSpec("cost_overrun", 8, RiskStatus.OPEN),
            RiskSpec("copyright", 6, RiskStatus.OPEN, 2, 3, title="Generated descriptions quote lyrics"),
        ],
        quality=(0.75, 0.85, 0.05, 0.03, 800),
    ),
    ProjectSpec(
        "Edge + cloud inference pilot",
        "hybrid-inference-pilot",
        "Routes easy requests to Llama 8B on the group's own GPUs and hard ones to the cloud, to cut the "
        "inference bill of every team.",
        "platform",
        Industry.TECHNOLOGY,
        UseCase.OTHER,
        DataClassification.INTERNAL,
        AIActTier.MINIMAL,
        "hannah.lindqvist",
        "rafael.costa",
        260,
        [(S.DATA_PREPARATION, 240), (S.DEVELOPMENT, 200), (S.EVALUATION, 110), (S.PILOT, 30)],
        [
            _c(
                "Llama 3.1 8B on vLLM",
                FM,
                Provider.ON_PREMISES,
                Hosting.HYBRID,
                region="Frankfurt DC2",
                environment=STAGING,
                model_name="llama-3.1-8b-instruct",
                model_source=ModelSource.OPEN_WEIGHTS,
                frameworks=["vLLM", "Transformers"],
                gpu_type="NVIDIA L4",
                gpu_count=4,
            ),
            _c(
                "Cloud fallback (gpt-4o-mini)",
                FM,
                Provider.AZURE,
                Hosting.HYBRID,
                region="westeurope",
                environment=STAGING,
                model_name="gpt-4o-mini",
                model_source=ModelSource.HOSTED_API,
            ),
            _c(
                "Difficulty router",
                ORCH,
                Provider.ON_PREMISES,
                Hosting.HYBRID,
                environment=STAGING,
                frameworks=["LiteLLM", "RouteLLM"],
            ),
            _c(
                "GPU nodes",
                COMP,
                Provider.ON_PREMISES,
                Hosting.LOCAL,
                environment=STAGING,
                gpu_type="NVIDIA L4",
                gpu_count=4,
            ),
        ],
        usage=[Usage("llama-3.1-8b-instruct", 30000, 800, 200), Usage("gpt-4o-mini", 6000, 1200, 300)],
        monthly_people=14000,
        risks=[
            RiskSpec("model_deprecation", 15, RiskStatus.OPEN, 2, 3),
            RiskSpec("hallucination", 12, RiskStatus.MITIGATING, 3, 3, title="Small model answers hard questions"),
            RiskSpec("unbounded_consumption", 10, RiskStatus.OPEN),
        ],
        quality=(0.78, 0.87, 0.08, 0.05, 700),
    ),
    ProjectSpec(
        "Contract clause extractor",
        "contract-clause-extractor",
        "Idea: pull renewal, liability and termination clauses out of supplier contracts for procurement.",
        "platform",
        Industry.OTHER,
        UseCase.DATA_ANALYSIS,
        "",
        AIActTier.UNASSESSED,
        "daniel.price",
        "rafael.costa",
        45,
        [],
        [
            _c(
                "Local Llama (candidate)",
                FM,
                Provider.ON_PREMISES,
                Hosting.LOCAL,
                environment=DEV,
                model_name="llama-3.1-8b-instruct",
                model_source=ModelSource.OPEN_WEIGHTS,
                frameworks=["Ollama"],
            )
        ],
        monthly_people=4000,
        risks=[RiskSpec("pii_leakage", 5, RiskStatus.OPEN, 2, 3, title="Contracts name individual signatories")],
    ),
    ProjectSpec(
        "Floor mood monitor",
        "floor-mood-monitor",
        "Proposal: infer call-centre agents' emotions from voice to plan breaks. On hold: emotion recognition "
        "at work is a prohibited practice under the EU AI Act.",
        "cx",
        Industry.RETAIL,
        UseCase.OTHER,
        DataClassification.SENSITIVE_PERSONAL,
        AIActTier.UNACCEPTABLE,
        "jonas.weber",
        "amara.okafor",
        120,
        [],
        [],
        monthly_people=3000,
        risks=[
            RiskSpec("eu_ai_act", 14, RiskStatus.OPEN, 5, 5, title="Prohibited practice: emotion recognition at work"),
        ],
        incidents=[
            Incident(
                100,
                0,
                Health.RED,
                "Legal: prohibited under Article 5 of the EU AI Act.",
                "Cannot proceed in this form.",
            )
        ],
    ),
    ProjectSpec(
        "Legacy FAQ bot",
        "legacy-faq-bot",
        "The rule-and-retrieval FAQ bot of Northwind Retail, replaced by Ask Aria.",
        "cx",
        Industry.RETAIL,
        UseCase.CUSTOMER_SUPPORT,
        DataClassification.INTERNAL,
        AIActTier.LIMITED,
        "jonas.weber",
        "amara.okafor",
        900,
        [
            (S.DATA_PREPARATION, 880),
            (S.DEVELOPMENT, 850),
            (S.EVALUATION, 820),
            (S.PILOT, 800),
            (S.PRODUCTION, 760),
            (S.RETIRED, 230),
        ],
        [
            _c(
                "GPT-4o-mini FAQ answers",
                FM,
                Provider.AWS,
                region="eu-central-1",
                environment=PROD,
                model_name="gpt-4o-mini",
                model_source=ModelSource.HOSTED_API,
                frameworks=["LangChain"],
            )
        ],
        usage=[Usage("gpt-4o-mini", 5000, 900, 150)],
        monthly_people=6000,
        risks=[
            RiskSpec("hallucination", 70, RiskStatus.CLOSED, note="Retired; answers now come from Ask Aria."),
            RiskSpec("model_deprecation", 60, RiskStatus.CLOSED, note="Retired before the model's deprecation."),
        ],
    ),
]


# ---------------------------------------------------------------------------------------------
# Users and credentials


def _password() -> str:
    return secrets.token_urlsafe(12)


def demo_users_ensure(*, organization: Organization, superuser: bool = False) -> dict[str, str]:
    """Create missing demo users and personas; return the new logins' passwords (shown once).

    With `superuser`, demo-admin is also made staff and superuser, so the Django admin works.
    """
    created: dict[str, str] = {}
    for username, role, first, last in DEMO_USERS + PERSONAS:
        user, is_new = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "email": f"{username}@northwind.example"},
        )
        if is_new:
            if any(username == u for u, *_ in DEMO_USERS):
                created[username] = _password()
                user.set_password(created[username])
            else:
                user.set_unusable_password()
            user.save()
        if superuser and username == "demo-admin" and not user.is_superuser:
            user.is_staff = user.is_superuser = True
            user.save(update_fields=["is_staff", "is_superuser"])
        Membership.objects.get_or_create(user=user, organization=organization, defaults={"role": role})
    return created


def demo_passwords_reset() -> dict[str, str]:
    """Give every demo login a new random password; return them."""
    passwords = {}
    for username, *_ in DEMO_USERS:
        user = User.objects.get(username=username)
        passwords[username] = _password()
        user.set_password(passwords[username])
        user.save(update_fields=["password"])
    return passwords


def credentials_write(*, path: Path, passwords: dict[str, str]) -> None:
    """Write the logins to a file only its owner can read, keeping lines of logins not changed."""
    roles = {username: role for username, role, *_ in DEMO_USERS}
    kept: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] in roles:
                kept[parts[0]] = parts[1]
    kept |= passwords
    lines = [f"{u:<18} {kept[u]:<20} {roles[u]}" for u, *_ in DEMO_USERS if u in kept]
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("# username          password             role\n" + "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# The curated portfolio


@dataclass
class DemoResult:
    passwords: dict[str, str]
    projects_created: list[str]


def _at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def _money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


class _Timeline:
    """Which stage a project was in on a given day."""

    def __init__(self, spec: ProjectSpec, today: dt.date):
        self.start = today - dt.timedelta(days=spec.started_days_ago)
        self.moves = [(today - dt.timedelta(days=m[1]), m[0]) for m in spec.path]

    def stage_on(self, day: dt.date) -> str:
        stage = Stage.IDEATION
        for since, to_stage in self.moves:
            if since <= day:
                stage = to_stage
        return stage


USAGE_SHARE = {Stage.DEVELOPMENT: 0.05, Stage.EVALUATION: 0.12, Stage.PILOT: 0.35, Stage.PRODUCTION: 1.0}
STATUS_TEXT = {
    Stage.IDEATION: ("Scoping the use case and its business value.", "Agree success criteria with the owner."),
    Stage.DATA_PREPARATION: (
        "Collecting and cleaning source data; privacy review of every source.",
        "Finish labelling the evaluation set.",
    ),
    Stage.DEVELOPMENT: (
        "Iterating on prompts and retrieval; the evaluation harness grows each week.",
        "Close the gap to the accuracy threshold.",
    ),
    Stage.EVALUATION: (
        "Running the evaluation suite against the acceptance thresholds.",
        "Red-team session and sign-off for the pilot.",
    ),
    Stage.PILOT: (
        "Pilot running with a limited user group; feedback triaged weekly.",
        "Decide on the production roll-out.",
    ),
    Stage.PRODUCTION: ("Stable in production; monitoring cost, quality and drift.", "Monthly model and prompt review."),
    Stage.RETIRED: ("Decommissioned; data deleted according to the retention policy.", ""),
}
STAGE_PROGRESS = {
    Stage.IDEATION: (0, 10),
    Stage.DATA_PREPARATION: (10, 30),
    Stage.DEVELOPMENT: (30, 55),
    Stage.EVALUATION: (55, 70),
    Stage.PILOT: (70, 85),
    Stage.PRODUCTION: (85, 100),
    Stage.RETIRED: (100, 100),
}


def _price_table(organization: Organization) -> dict[str, list[ModelPrice]]:
    table: dict[str, list[ModelPrice]] = {}
    for price in ModelPrice.objects.filter(organization=organization).order_by("valid_from"):
        table.setdefault(price.model, []).append(price)
    return table


def _price_on(table: dict[str, list[ModelPrice]], model: str, day: dt.date) -> ModelPrice | None:
    valid = [p for p in table.get(model, []) if p.valid_from <= day]
    return valid[-1] if valid else None


def _usage_entries(spec, project, timeline, today, prices, rng, by) -> list[CostEntry]:
    """Return token usage every other day, priced like the usage API prices it (price valid that day).

    Built in memory and bulk-inserted: thousands of rows through one service call each would make the
    first `make run` slow, and each row is validated below (model_price lookups, non-negative tokens).
    """
    entries = []
    first = max(timeline.start, today - dt.timedelta(days=365))
    for offset in range(0, (today - first).days, 2):
        day = first + dt.timedelta(days=offset)
        share = USAGE_SHARE.get(timeline.stage_on(day), 0)
        if not share:
            continue
        elapsed = 1 - (today - day).days / 365
        for use in spec.usage:
            volume = 2 * use.requests * share * (1 + (use.growth - 1) * elapsed) * rng.uniform(0.8, 1.2)
            requests = int(volume)
            prompt_tokens, tokens_out = requests * use.input_tokens, requests * use.output_tokens
            # A quarter of the prompt is served from cache; `input_tokens` excludes those, as in usage_ingest.
            cached = prompt_tokens // 4 if "llama" not in use.model else 0
            tokens_in = prompt_tokens - cached
            price = _price_on(prices, use.model, day)
            amount = None
            if price is not None:
                amount = usage_price(
                    price=price, input_tokens=tokens_in, cached_input_tokens=cached, output_tokens=tokens_out
                )
            entry = CostEntry(
                project=project,
                date=day,
                category=CostCategory.INFERENCE,
                amount=amount,
                description=f"Token usage, {use.model}",
                model=use.model,
                input_tokens=tokens_in,
                cached_input_tokens=cached,
                output_tokens=tokens_out,
                requests=requests,
                source=CostSource.USAGE,
                price=price,
                external_id=f"usage-{use.model}-{day:%Y%m%d}",
                created_by=by,
            )
            entry.full_clean(
                exclude=["project", "price", "created_by"], validate_unique=False, validate_constraints=False
            )
            entries.append(entry)
    return entries


def _monthly_costs(spec: ProjectSpec, timeline: _Timeline, today: dt.date, rng: random.Random) -> list[dict]:
    """Return the month-end cost lines of the last twelve months: people, storage, stage-specific work."""
    rows = []
    month = dt.date(today.year - 1, today.month, 1)
    while month < today.replace(day=1):
        end = (month + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        stage = timeline.stage_on(end)
        if end >= timeline.start and not (stage == Stage.RETIRED and timeline.stage_on(month) == Stage.RETIRED):
            jitter = rng.uniform(0.9, 1.1)
            rows.append(
                dict(
                    date=end,
                    category=CostCategory.PERSONNEL,
                    amount=_money(spec.monthly_people * jitter),
                    description="Team time",
                )
            )
            rows.append(
                dict(
                    date=end,
                    category=CostCategory.STORAGE,
                    amount=_money(300 + 900 * rng.random()),
                    description="Storage and vector index",
                )
            )
            extra = {
                Stage.DATA_PREPARATION: (CostCategory.DATA_LABELING, 9000, "Annotation vendor"),
                Stage.DEVELOPMENT: (CostCategory.FINE_TUNING, 6000, "Fine-tuning and experiment runs"),
                Stage.EVALUATION: (CostCategory.OTHER, 4000, "Red-teaming and evaluation services"),
                Stage.PRODUCTION: (CostCategory.LICENSING, 2500, "Tooling and observability licences"),
            }.get(stage)
            if extra:
                rows.append(dict(date=end, category=extra[0], amount=_money(extra[1] * jitter), description=extra[2]))
            gpus = max((c.get("gpu_count", 0) for c in spec.infra), default=0)
            if gpus and stage not in (Stage.IDEATION, Stage.DATA_PREPARATION):
                hours = Decimal(gpus * 24 * end.day * rng.uniform(0.5, 0.9)).quantize(CENT)
                rows.append(
                    dict(
                        date=end,
                        category=CostCategory.INFERENCE,
                        amount=_money(float(hours) * 2.1),
                        description="On-premises GPU hours (depreciation and power)",
                        gpu_hours=hours,
                        energy_kwh=(hours * Decimal("0.7")).quantize(CENT),
                    )
                )
        month = end + dt.timedelta(days=1)
    return rows


def _quality(spec, project, timeline, today, by, rng) -> None:
    """Record the monthly evaluation: accuracy, hallucinations, latency, satisfaction, toxicity."""
    acc0, acc1, hal0, hal1, latency = spec.quality
    first = max(timeline.start, today - dt.timedelta(days=365))
    days = [first + dt.timedelta(days=d) for d in range(14, (today - first).days, 30)]
    days = [d for d in days if timeline.stage_on(d) not in (Stage.IDEATION, Stage.DATA_PREPARATION, Stage.RETIRED)]
    for i, day in enumerate(days):
        t = i / max(len(days) - 1, 1)
        spike = any(
            x.from_days_ago >= (today - day).days >= x.to_days_ago and x.health == Health.RED for x in spec.incidents
        )
        values = [
            (MetricKind.ACCURACY, acc0 + (acc1 - acc0) * t + rng.uniform(-0.01, 0.01), 0.85),
            (MetricKind.HALLUCINATION_RATE, (hal0 + (hal1 - hal0) * t) * (2.5 if spike else 1), 0.05),
            (MetricKind.LATENCY_P95_MS, latency * rng.uniform(0.85, 1.25), latency * 1.2),
            (MetricKind.TOXICITY_RATE, rng.uniform(0.001, 0.008), 0.01),
        ]
        if timeline.stage_on(day) in (Stage.PILOT, Stage.PRODUCTION):
            values.append((MetricKind.USER_SATISFACTION, 3.6 + 0.8 * t + rng.uniform(-0.1, 0.1), 4.0))
        for metric, value, threshold in values:
            quality_metric_create(
                project=project, by=by, date=day, metric=metric, value=round(value, 4), threshold=round(threshold, 4)
            )


def _risks(spec, project, today, people, manager) -> None:
    for r in spec.risks:
        entry = CATALOGUE[r.key]
        owner = people[spec.lead]
        raised = today - dt.timedelta(weeks=r.weeks_ago)
        risk = risk_create(
            project=project,
            by=owner,
            title=r.title or entry.title,
            category=entry.category,
            likelihood=r.likelihood or entry.likelihood,
            impact=r.impact or entry.impact,
            description=entry.description,
            mitigation_plan="" if r.no_plan else entry.mitigation_plan,
            nist_refs=list(entry.nist_refs),
            owasp_refs=list(entry.owasp_refs),
            owner=owner,
            treatment=Treatment.ACCEPT if r.status == RiskStatus.ACCEPTED else Treatment.MITIGATE,
            next_review_date=today + dt.timedelta(days=r.review_in_days),
        )
        reviewed = _at(raised)
        # History: the service stamps "now"; the demo dates the initial assessment when the risk was raised.
        RiskAssessment.objects.filter(risk=risk).update(assessed_at=reviewed)
        if r.reassess:
            weeks, likelihood, impact, note = r.reassess
            risk = risk_update(risk=risk, by=owner, likelihood=likelihood, impact=impact, note=note)
            reviewed = _at(today - dt.timedelta(weeks=weeks))
            RiskAssessment.objects.filter(risk=risk, note=note).update(assessed_at=reviewed)
        if r.status == RiskStatus.MITIGATING:
            risk = risk_update(risk=risk, by=owner, status=RiskStatus.MITIGATING)
        elif r.status == RiskStatus.ACCEPTED:
            risk = risk_accept(risk=risk, by=manager, justification=r.note, expires=today + dt.timedelta(days=180))
        elif r.status == RiskStatus.CLOSED:
            risk = risk_close(risk=risk, by=owner, note=r.note)
            Risk.objects.filter(pk=risk.pk).update(closed_at=_at(today - dt.timedelta(weeks=max(r.weeks_ago - 10, 1))))
        Risk.objects.filter(pk=risk.pk).update(last_reviewed_at=reviewed, created_at=_at(raised))


def _status_updates(spec, project, timeline, today, author, rng) -> None:
    """Log a weekly status (Fridays) over the last year, or since the project started."""
    first = max(timeline.start, today - dt.timedelta(days=364))
    day = first + dt.timedelta(days=(4 - first.weekday()) % 7)
    retired_logged = False
    while day <= today:
        stage = timeline.stage_on(day)
        if stage == Stage.RETIRED:
            if retired_logged:
                break
            retired_logged = True
        summary, next_steps = STATUS_TEXT[stage]
        health, blockers = Health.GREEN, ""
        for x in spec.incidents:
            if x.from_days_ago >= (today - day).days >= x.to_days_ago:
                health, summary, blockers = x.health, x.summary, x.blockers
        if health == Health.GREEN and stage != Stage.RETIRED and rng.random() < 0.08:
            health, blockers = Health.AMBER, "Key engineer on leave; one milestone slipped a week."
        low, high = STAGE_PROGRESS[stage]
        since = max([s for s, st in timeline.moves if s <= day and st == stage], default=timeline.start)
        progress = min(high, low + (day - since).days // 7)
        status_update_create(
            project=project,
            by=author,
            date=day,
            health=health,
            progress=progress,
            summary=summary,
            blockers=blockers,
            next_steps=next_steps,
            accomplishments="Weekly evaluation run completed." if stage != Stage.IDEATION else "",
        )
        day += dt.timedelta(days=7)


def _transitions(spec, project, timeline, people, manager) -> None:
    """Walk the project through its stages with the services, then date each move in the past."""
    by = people[spec.lead]
    for since, move in zip((m[0] for m in timeline.moves), spec.path, strict=True):
        to_stage, note = move[0], (move[2] if len(move) > 2 else "")
        unmet = [g for g in project_gates(project=project, to_stage=to_stage) if not g.passed]
        override = spec.overrides.get(to_stage) or (
            "Demo history: approved by the steering committee." if unmet else ""
        )
        transition = project_transition(
            project=project, to_stage=to_stage, by=manager if override else by, note=note, override_reason=override
        )
        # History: the service stamps "now"; the demo dates the move on the day it happened.
        StageTransition.objects.filter(pk=transition.pk).update(at=_at(since))
    entered = _at(timeline.moves[-1][0]) if timeline.moves else _at(timeline.start)
    Project.objects.filter(pk=project.pk).update(stage_entered_at=entered)


def _project_seed(spec, organization, teams, people, manager, prices, today) -> None:
    rng = random.Random(spec.slug)
    timeline = _Timeline(spec, today)
    lead = people[spec.lead]
    project = project_create(
        organization=organization,
        by=lead,
        name=spec.name,
        slug=spec.slug,
        summary=spec.summary,
        team=teams[spec.team],
        industry=spec.industry,
        use_case=spec.use_case,
        business_owner=people[spec.owner],
        technical_lead=lead,
        human_oversight_owner=people.get(spec.oversight),
        start_date=timeline.start,
        target_date=timeline.start + dt.timedelta(days=540),
        data_classification=spec.classification,
        ai_act_tier=spec.tier,
    )
    for component in spec.infra:
        infrastructure_component_create(project=project, by=lead, **component)
    monthly = _monthly_costs(spec, timeline, today, rng)
    for row in monthly:
        cost_entry_create(
            project=project,
            by=lead,
            source=CostSource.MANUAL,
            external_id=f"monthly-{row['date']:%Y%m}-{row['category']}",
            **row,
        )
    usage = _usage_entries(spec, project, timeline, today, prices, rng, lead)
    CostEntry.objects.bulk_create(usage, batch_size=1000)
    audit_record_created(usage)  # bulk_create sends no signals: record the history ourselves
    # Budgets per calendar year, sized against the spend (extrapolated to the whole year) so the cost story holds.
    data_start = max(timeline.start, today - dt.timedelta(days=365))
    for year in sorted({today.year} | {r["date"].year for r in monthly}):
        year_start, year_end = dt.date(year, 1, 1), dt.date(year, 12, 31)
        spent = sum((r["amount"] for r in monthly if r["date"].year == year), Decimal(0))
        spent += sum((e.amount or 0 for e in usage if e.date.year == year), Decimal(0))
        measured = (min(today, year_end) - max(year_start, data_start)).days + 1
        planned = (year_end - max(year_start, timeline.start)).days + 1
        forecast = float(spent) * planned / max(measured, 1)
        budget_create(
            project=project,
            by=manager,
            period_start=year_start,
            period_end=year_end,
            amount=_money(max(round(forecast * spec.budget_factor, -3), 5000)),
            notes=f"FY{year} budget",
        )
    _risks(spec, project, today, people, manager)
    if not spec.metrics_after_transitions:
        _quality(spec, project, timeline, today, lead, rng)
    _transitions(spec, project, timeline, people, manager)
    if spec.metrics_after_transitions:
        _quality(spec, project, timeline, today, lead, rng)
    _status_updates(spec, project, timeline, today, lead, rng)
    # History: every row of the project was written today; date the project itself when it started.
    Project.objects.filter(pk=project.pk).update(created_at=_at(timeline.start))


def demo_seed(
    *, today: dt.date | None = None, superuser: bool = False, log: Callable[[str], None] = lambda _: None
) -> DemoResult:
    """Create what is missing of the demo portfolio; return new passwords and the projects created.

    `superuser` makes demo-admin a platform superuser too (the Django admin); by default no demo login is.
    """
    today = today or timezone.localdate()
    organization = Organization.objects.filter(slug=ORG_SLUG).first()
    if organization is None:
        organization = organization_create(name=ORG_NAME, slug=ORG_SLUG, currency="USD", timezone_name="Europe/London")
    passwords = demo_users_ensure(organization=organization, superuser=superuser)
    people = {u.username: u for u in User.objects.filter(username__in=[p[0] for p in DEMO_USERS + PERSONAS])}
    manager = people["demo-manager"]
    teams = {}
    for key, (name, description) in TEAMS.items():
        teams[key], _ = Team.objects.get_or_create(
            organization=organization, slug=key, defaults={"name": name, "description": description}
        )
    if not ModelPrice.objects.filter(organization=organization).exists():
        with transaction.atomic():
            for p in PRICES:
                model_price_create(
                    organization=organization,
                    by=manager,
                    provider=p.provider,
                    model=p.model,
                    input_per_mtok=Decimal(p.input),
                    output_per_mtok=Decimal(p.output),
                    cached_input_per_mtok=Decimal(p.cached) if p.cached else None,
                    valid_from=today - dt.timedelta(days=p.valid_days_ago),
                    deprecation_date=today + dt.timedelta(days=p.deprecation_in_days)
                    if p.deprecation_in_days
                    else None,
                )
    prices = _price_table(organization)
    existing = set(organization.projects.values_list("slug", flat=True))
    created = []
    for spec in PROJECTS:
        if spec.slug in existing:
            continue
        with transaction.atomic():  # a project is seeded whole or not at all
            _project_seed(spec, organization, teams, people, manager, prices, today)
        created.append(spec.slug)
        log(f"  {spec.name}")
    return DemoResult(passwords=passwords, projects_created=created)


# ---------------------------------------------------------------------------------------------
# Synthetic load-test projects

SYNTHETIC_ORGS = 9  # plus the demo organization: ten in all
SYNTHETIC_CHUNK = 100  # projects per transaction: a killed run keeps only whole projects
SYNTHETIC_MODELS = [
    ("gpt-4o", 2.5, 10.0),
    ("claude-sonnet-4", 3.0, 15.0),
    ("gemini-2.5-flash", 0.3, 2.5),
    ("llama-3.1-70b-instruct", 0.0, 0.0),
]
SYNTHETIC_FRAMEWORKS = ["LangChain", "LlamaIndex", "Transformers", "vLLM", "Semantic Kernel", "LangGraph"]
SYNTHETIC_GPUS = ["", "", "NVIDIA A100 80GB", "NVIDIA H100 80GB", "NVIDIA L4", "NVIDIA L40S"]
COST_WEIGHTS = {
    CostCategory.INFERENCE: 50,
    CostCategory.PERSONNEL: 12,
    CostCategory.STORAGE: 10,
    CostCategory.FINE_TUNING: 8,
    CostCategory.TRAINING: 5,
    CostCategory.DATA_LABELING: 6,
    CostCategory.LICENSING: 5,
    CostCategory.OTHER: 4,
}


def synthetic_slug(index: int) -> str:
    return f"synthetic-{index:05d}"


def _synthetic_orgs() -> list[tuple[Organization, User]]:
    """Return the ten organizations projects are spread over, each with the manager who writes its data."""
    demo = Organization.objects.get(slug=ORG_SLUG)
    orgs = [(demo, User.objects.get(username="demo-manager"))]
    for n in range(1, SYNTHETIC_ORGS + 1):
        org, _ = Organization.objects.get_or_create(
            slug=f"synthetic-org-{n:02d}", defaults={"name": f"Synthetic Org {n:02d}", "currency": "USD"}
        )
        manager, is_new = User.objects.get_or_create(username=f"synthetic-manager-{n:02d}")
        if is_new:
            manager.set_unusable_password()
            manager.save(update_fields=["password"])
        Membership.objects.get_or_create(user=manager, organization=org, defaults={"role": Role.MANAGER})
        orgs.append((org, manager))
    return orgs


def _synthetic_project(index: int, org: Organization, manager: User, today: dt.date) -> tuple[Project, dict]:
    """Build one project and its rows in memory, from a random generator seeded with its index."""
    rng = random.Random(index)
    stage = rng.choice(Stage.values)
    order = Stage.order(stage)
    start = today - dt.timedelta(days=rng.randint(200, 700))
    # Stage entry dates spread between the start and a few weeks ago.
    span = (today - dt.timedelta(days=14) - start).days
    entered = sorted(start + dt.timedelta(days=rng.randint(1, span)) for _ in range(order))
    day = lambda: today - dt.timedelta(days=rng.randint(0, 364))  # noqa: E731
    project = Project(
        organization=org,
        name=f"Synthetic project {index:05d}",
        slug=synthetic_slug(index),
        summary="Generated for load testing.",
        industry=rng.choice(Industry.values),
        use_case=rng.choice(UseCase.values),
        data_classification=rng.choice(DataClassification.values),
        ai_act_tier=rng.choice([AIActTier.MINIMAL, AIActTier.LIMITED, AIActTier.HIGH, AIActTier.UNASSESSED]),
        business_owner=manager,
        technical_lead=manager,
        start_date=start,
        target_date=start + dt.timedelta(days=540),
        stage=stage,
        stage_entered_at=_at(entered[-1] if entered else start),
    )
    rows: dict[str, list] = {"transitions": [], "status": [], "budgets": [], "infra": [], "costs": [], "metrics": []}
    stages = Stage.values
    for step, when in enumerate(entered):
        to_stage = stage if step == order - 1 else stages[step + 1]
        rows["transitions"].append(
            StageTransition(from_stage=stages[step], to_stage=to_stage, at=_at(when), by=manager, note="Synthetic")
        )
    for n in range(10):
        rows["status"].append(
            StatusUpdate(
                author=manager,
                date=today - dt.timedelta(days=35 * n + rng.randint(0, 6)),
                health=rng.choices(Health.values, weights=[6, 3, 1])[0],
                progress=max(0, min(100, order * 15 - n * 2)),
                summary=rng.choice(list(STATUS_TEXT.values()))[0],
            )
        )
    latest = max(rows["status"], key=lambda s: s.date)
    project.health, project.progress, project.last_status_date = latest.health, latest.progress, latest.date
    for year in sorted({today.year, today.year - 1})[-rng.randint(1, 2) :]:
        rows["budgets"].append(
            Budget(
                period_start=dt.date(year, 1, 1),
                period_end=dt.date(year, 12, 31),
                amount=_money(rng.randint(50, 600) * 1000),
                tolerance_pct=Decimal(10),
            )
        )
    provider = rng.choice(Provider.values)
    hosting = Hosting.LOCAL if provider == Provider.ON_PREMISES else rng.choice(Hosting.values)
    for kind in rng.sample(ComponentKind.values, rng.randint(3, 5)):
        gpu = rng.choice(SYNTHETIC_GPUS) if kind in (ComponentKind.COMPUTE, ComponentKind.FOUNDATION_MODEL) else ""
        rows["infra"].append(
            InfrastructureComponent(
                name=f"{ComponentKind(kind).label} {index:05d}",
                kind=kind,
                provider=provider,
                hosting=hosting,
                environment=rng.choice(Environment.values),
                model_name=rng.choice(SYNTHETIC_MODELS)[0] if kind == ComponentKind.FOUNDATION_MODEL else "",
                frameworks=rng.sample(SYNTHETIC_FRAMEWORKS, 2),
                gpu_type=gpu,
                gpu_count=rng.randint(1, 8) if gpu else 0,
            )
        )
    categories, weights = list(COST_WEIGHTS), list(COST_WEIGHTS.values())
    for n in range(200):
        category = rng.choices(categories, weights)[0]
        entry = CostEntry(
            date=day(), category=category, source=CostSource.API, external_id=f"synthetic-{n}", created_by=manager
        )
        if category == CostCategory.INFERENCE:
            model, price_in, price_out = rng.choice(SYNTHETIC_MODELS)
            entry.model, entry.input_tokens, entry.output_tokens = (
                model,
                rng.randint(10**5, 10**8),
                rng.randint(10**4, 10**7),
            )
            entry.amount = _money((entry.input_tokens * price_in + entry.output_tokens * price_out) / 1e6)
        else:
            entry.amount = _money(rng.uniform(50, 8000))
        rows["costs"].append(entry)
    for _ in range(10):
        metric = rng.choice([m for m in MetricKind.values if m != MetricKind.CUSTOM])
        lower = metric in (MetricKind.HALLUCINATION_RATE, MetricKind.TOXICITY_RATE, MetricKind.LATENCY_P95_MS)
        scale = {MetricKind.LATENCY_P95_MS: 3000, MetricKind.USER_SATISFACTION: 5}.get(metric, 1)
        rows["metrics"].append(
            QualityMetric(
                date=day(),
                metric=metric,
                value=round(rng.random() * scale, 4),
                threshold=round((0.1 if lower else 0.8) * scale, 4),
                higher_is_better=not lower,
            )
        )
    rows["risks"] = []
    for n, category in enumerate(
        rng.sample(RiskCategory.values, len(RiskCategory.values)) + rng.sample(RiskCategory.values, 2)
    ):
        refs = [r for r in CATALOGUE.values() if r.category == category]
        template = rng.choice(refs)
        status = rng.choices(RiskStatus.values, weights=[5, 3, 1, 2])[0]
        accepted = status == RiskStatus.ACCEPTED
        risk = Risk(
            organization=org,
            title=f"{template.title} ({n + 1})",
            description=template.description,
            category=category,
            likelihood=rng.randint(1, 5),
            impact=rng.randint(1, 5),
            status=status,
            treatment=Treatment.ACCEPT if accepted else Treatment.MITIGATE,
            owner=manager,
            mitigation_plan=template.mitigation_plan,
            next_review_date=today + dt.timedelta(days=rng.randint(-60, 90)),
            last_reviewed_at=_at(day()),
            nist_refs=list(template.nist_refs),
            owasp_refs=list(template.owasp_refs),
            source=RiskSource.MANUAL,
            accepted_by=manager if accepted else None,
            acceptance_justification="Within appetite (synthetic)." if accepted else "",
            acceptance_expires=today + dt.timedelta(days=120) if accepted else None,
            closed_at=_at(day()) if status == RiskStatus.CLOSED else None,
        )
        rows["risks"].append(risk)
    return project, rows


def synthetic_seed(*, count: int, today: dt.date | None = None, progress: bool = True) -> int:
    """Ensure `count` synthetic projects exist (synthetic-00001…), spread over ten organizations.

    Load-test data is written with bulk_create, bypassing the services: a service call per row would
    take hours for a million cost entries, and these rows are generated valid (non-negative amounts,
    1–5 ratings, stage moves that follow the lifecycle). Each project's data comes from a generator
    seeded with its index, so reruns and larger counts reproduce the same projects; existing slugs are
    skipped. No audit events are written for them: load-test volume, not anyone's change.
    Return how many projects were created.
    """
    from tqdm import tqdm

    today = today or timezone.localdate()
    orgs = _synthetic_orgs()
    existing = set(
        Project.objects.filter(slug__startswith="synthetic-", organization__in=[o for o, _ in orgs]).values_list(
            "slug", flat=True
        )
    )
    missing = [i for i in range(1, count + 1) if synthetic_slug(i) not in existing]
    with tqdm(total=len(missing), unit="project", desc="Synthetic projects", disable=not (progress and missing)) as bar:
        for start in range(0, len(missing), SYNTHETIC_CHUNK):
            chunk = missing[start : start + SYNTHETIC_CHUNK]
            built = [_synthetic_project(i, *orgs[i % len(orgs)], today) for i in chunk]
            with transaction.atomic():
                Project.objects.bulk_create([project for project, _ in built])
                children: dict[type, list] = {}
                for project, rows in built:
                    for key, items in rows.items():
                        for item in items:
                            item.project = project
                        children.setdefault(key, []).extend(items)
                Risk.objects.bulk_create(children.pop("risks"), batch_size=2000)
                assessments = [
                    RiskAssessment(
                        risk=r,
                        assessed_at=r.last_reviewed_at,
                        by=r.owner,
                        likelihood=r.likelihood,
                        impact=r.impact,
                        note="Initial assessment",
                    )
                    for project, rows in built
                    for r in rows["risks"]
                ]
                RiskAssessment.objects.bulk_create(assessments, batch_size=2000)
                models = {
                    "transitions": StageTransition,
                    "status": StatusUpdate,
                    "budgets": Budget,
                    "infra": InfrastructureComponent,
                    "costs": CostEntry,
                    "metrics": QualityMetric,
                }
                for key, model in models.items():
                    model.objects.bulk_create(children[key], batch_size=5000)
            bar.update(len(chunk))
    return len(missing)
