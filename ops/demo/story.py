"""The demo story of `seed_demo`: Northwind Group, a fictional holding that runs LLM projects.

Data only (people, teams, prices, projects and what happens to them); ops/demo/seed.py seeds it.
Its story: data privacy, cost management and hallucinations are the problems that keep coming back.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from ops.models import (
    ComponentKind,
    Environment,
    Hosting,
    ModelProvider,
    ModelSource,
    Provider,
    RiskStatus,
)
from projects.models import (
    AIActTier,
    DataClassification,
    Health,
    Industry,
    Role,
    Stage,
    UseCase,
)

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
    PriceSpec(ModelProvider.AZURE_OPENAI, "gpt-4o", "5.00", "2.50", "15.00", 500),
    PriceSpec(ModelProvider.AZURE_OPENAI, "gpt-4o", "2.50", "1.25", "10.00", 200, deprecation_in_days=75),
    PriceSpec(ModelProvider.AZURE_OPENAI, "gpt-4o-mini", "0.15", "0.075", "0.60", 500),
    PriceSpec(ModelProvider.AZURE_OPENAI, "text-embedding-3-large", "0.13", None, "0", 500),
    PriceSpec(ModelProvider.AWS_BEDROCK, "claude-sonnet-4", "3.00", "0.30", "15.00", 500),
    PriceSpec(ModelProvider.AWS_BEDROCK, "claude-haiku-3.5", "0.80", "0.08", "4.00", 500),
    PriceSpec(ModelProvider.ANTHROPIC, "claude-sonnet-4-api", "3.00", "0.30", "15.00", 500),
    PriceSpec(ModelProvider.GCP_VERTEX_AI, "gemini-2.5-pro", "1.25", "0.31", "10.00", 500),
    PriceSpec(ModelProvider.GCP_VERTEX_AI, "gemini-2.5-flash", "0.30", "0.075", "2.50", 500),
    # Open weights on our own GPUs: tokens are free, the GPUs are costed monthly as compute.
    PriceSpec(ModelProvider.SELF_HOSTED, "llama-3.1-70b-instruct", "0", "0", "0", 500),
    PriceSpec(ModelProvider.SELF_HOSTED, "llama-3.1-8b-instruct", "0", "0", "0", 500),
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
