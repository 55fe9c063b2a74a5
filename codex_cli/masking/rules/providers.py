"""Provider tokens: credentials whose own format says what they are (a fixed prefix, a fixed shape).

Most are a literal prefix and a body (``token_rule``); each is its own rule and family. Bodies
are as loose as real keys are sloppy (lengths where the provider documents none) and as strict
as the prefix is common (``key-`` needs exactly 32 hex digits). Placeholders such as
``glpat-XXXXXXXXXXXXXXXXXXXX`` or ``hf_xxxx…`` are vetoed by ``token_check``.
"""

from __future__ import annotations

from typing import Optional

from codex_cli.masking.rules.base import (
    LINE,
    TOKEN_CHARS,
    Anchor,
    Hit,
    HsPattern,
    Rule,
    Span,
    fixed,
    token_check,
    token_rule,
)

_NOT_ALNUM = b"[^A-Za-z0-9]"
_B64 = "A-Za-z0-9+/"
_CHECK = token_check()


def _t(id: str, family: str, prefixes: str | tuple[str, ...], body: str, description: str, **kw) -> Rule:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    kw.setdefault("check", token_check(prefixes))
    return token_rule(id, family, prefixes, body, description, **kw)


def _telegram(hit: Hit, span: Span) -> Optional[Span]:
    """A bot token is ``<5-16 digit bot id>:<35 characters>``; only the part after the colon is secret."""
    buf, start = hit.buf, hit.start()
    digits = 0
    while digits < 17 and start - digits - 1 >= 0 and 48 <= buf[start - digits - 1] <= 57:
        digits += 1
    before = buf[start - digits - 1:start - digits]
    in_url = buf[start - digits - 3:start - digits] == b"bot"  # https://api.telegram.org/bot<id>:<token>/
    if not 5 <= digits <= 16 or (not in_url and (before.isalnum() or before in (b"_", b"-", b":"))):
        return None
    return _CHECK(hit, span)


_OPENAI = (r"(?<![A-Za-z0-9])sk-(?=[%s]{0,100}[0-9])(?=[%s]{0,100}[A-Z])[%s]{20,512}"
           % ((TOKEN_CHARS,) * 3))

RULES: tuple[Rule, ...] = (
    # --- AI providers (Anthropic and OpenRouter before OpenAI: they share its "sk-" prefix) ---
    _t("anthropic-api-key", "anthropic", ("sk-ant-api", "sk-ant-admin", "sk-ant-oat", "sk-ant-ort", "sk-ant-sid"),
       r"[0-9]{2}-[A-Za-z0-9_-]{20,200}", "Anthropic keys: sk-ant-api03-…, sk-ant-admin01-… (and oat/ort/sid)",
       before="A-Za-z0-9", after=TOKEN_CHARS),
    _t("openrouter-api-key", "openrouter", "sk-or-v1-", r"[a-f0-9]{64}", "OpenRouter key (sk-or-v1-…)",
       before="A-Za-z0-9"),
    Rule("openai-api-key", "openai", _OPENAI, (Anchor(b"sk-"),),
         "OpenAI keys: sk-…, sk-…T3BlbkFJ…, sk-proj-…, sk-svcacct-…, sk-admin-…",
         # every match has a digit within 101 bytes of "sk-": a run of "sk-sk-sk-" is never a candidate
         hs=(HsPattern(_NOT_ALNUM + b"sk-[A-Za-z_-]{0,100}[0-9]", b"sk-", expand=True),)),
    _t("huggingface-token", "huggingface", ("hf_", "api_org_"), r"[A-Za-z0-9]{34}",
       "Hugging Face tokens: hf_… and the older organization tokens api_org_…"),
    _t("groq-api-key", "groq", "gsk_", r"[A-Za-z0-9]{52}", "Groq API key (gsk_…)"),
    _t("xai-api-key", "xai", "xai-", r"[A-Za-z0-9]{80}", "xAI API key (xai-…)"),
    _t("replicate-api-token", "replicate", "r8_", r"[A-Za-z0-9]{37}", "Replicate API token (r8_…)"),
    _t("perplexity-api-key", "perplexity", "pplx-", r"[A-Za-z0-9]{48}", "Perplexity API key (pplx-…)"),
    _t("langsmith-api-key", "langsmith", ("lsv2_pt_", "lsv2_sk_"), r"[a-f0-9]{32}_[a-f0-9]{10}",
       "LangSmith API key (lsv2_pt_…, lsv2_sk_…)"),
    _t("pinecone-api-key", "pinecone", "pcsk_", r"[A-Za-z0-9_]{40,100}", "Pinecone API key (pcsk_…)"),
    _t("tavily-api-key", "tavily", "tvly-", r"(?:dev-|prod-)?[A-Za-z0-9]{32}", "Tavily API key (tvly-…)"),
    # --- cloud and infrastructure ---
    Rule("aws-access-key-id", "aws",
         r"(?<![A-Za-z0-9])(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)"
         r"(?=[A-Z0-9]{0,23}[BDEFHIJKLMOPQRSVWXYZ0-9])[A-Z0-9]{16,24}(?![A-Za-z0-9])",
         tuple(Anchor(p) for p in (b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"A3T")),
         "AWS access key ID (AKIA/ASIA/ABIA/ACCA/A3T…), 16-24 characters after the prefix",
         hs=(*(HsPattern(_NOT_ALNUM + p + b"[A-Z0-9]{0,23}[BDEFHIJKLMOPQRSVWXYZ0-9]", p, expand=True)
               for p in (b"AKIA", b"ASIA", b"ABIA", b"ACCA")),
             HsPattern(_NOT_ALNUM + b"A3T[A-Z0-9]{0,24}[BDEFHIJKLMOPQRSVWXYZ0-9]", b"A3T", expand=True))),
    Rule("aws-secret-access-key", "aws",
         r"(?i:aws[_-]?secret[_-]?(?:access[_-]?)?key|secret[_-]?access[_-]?key)"
         r"[\"']?[ \t]{0,16}(?:=>|:=|[:=])[ \t]{0,16}[\"']?",
         (Anchor(b"secret", offsets=(0, 3, 4), kind=LINE, caseless=True),),
         "AWS secret access key after aws_secret_access_key / SecretAccessKey / … = or :",
         secret=r"[A-Za-z0-9/+]{16,128}={0,2}",
         hs=(HsPattern(b"secret[_-]?(?:access[_-]?)?key", b"secret", caseless=True, expand=True),)),
    Rule("google-api-key", "google", r"(?<![A-Za-z0-9_-])AIza[%s]{30,100}" % TOKEN_CHARS, (Anchor(b"AIza"),),
         "Google API key (AIza…)", hs=(fixed(b"[^A-Za-z0-9_-]AIza[A-Za-z0-9_-]{30}", b"AIza", 30),)),
    Rule("gcp-service-account-key", "google",
         r"[\"']private_key[\"'][ \t]{0,16}[:=][ \t]{0,16}[\"']", (Anchor(b"private_key", offsets=(1,), kind=LINE),),
         "the private_key value of a GCP service-account JSON",
         secret=r"(?:[^\"'\\\r\n]|\\[^\r\n]){16,16384}", hs=(fixed(b"private_key", b"private_key", 0),)),
    _t("google-oauth-client-secret", "google", "GOCSPX-", r"[A-Za-z0-9_-]{28}", "Google OAuth client secret"),
    _t("google-oauth-access-token", "google", "ya29.", r"[A-Za-z0-9_-]{30,2048}",
       "Google OAuth access token (ya29.…)", before="A-Za-z0-9_.", after=TOKEN_CHARS),
    Rule("azure-storage-account-key", "azure",
         r"(?i:(?:Account|SharedAccess)Key)[ \t]{0,16}=[ \t]{0,16}",
         (Anchor(b"accountkey", kind=LINE, caseless=True), Anchor(b"sharedaccesskey", kind=LINE, caseless=True)),
         "Azure storage AccountKey= / Service Bus SharedAccessKey= in a connection string",
         secret=r"[A-Za-z0-9+/]{40,100}={0,2}(?![A-Za-z0-9+/=])", check=_CHECK),
    Rule("azure-sas-signature", "azure", r"(?<=[?&;])sig=",
         (Anchor(b"sig="),), "Azure SAS token signature (…&sig=… in a URL or connection string)",
         secret=r"(?:[A-Za-z0-9+/]|%2[BbFf]){40,200}(?:=|%3[Dd]){0,2}",
         hs=(fixed(b"[?&;]sig=[A-Za-z0-9+/%]{40}", b"sig=", 40),), check=_CHECK),
    Rule("azure-ad-client-secret", "azure",
         r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])",
         (Anchor(b"Q~", offsets=(4,)),), "Azure AD (Entra ID) client secret (…8Q~…)",
         hs=(fixed(b"[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{8}", b"Q~", 8),), check=_CHECK),
    _t("digitalocean-token", "digitalocean", ("dop_v1_", "doo_v1_", "dor_v1_"), r"[a-f0-9]{64}",
       "DigitalOcean personal access, OAuth and refresh tokens"),
    _t("hashicorp-vault-token", "hashicorp", ("hvs.", "hvb.", "hvr."), r"[A-Za-z0-9_-]{90,400}",
       "HashiCorp Vault service, batch and recovery tokens (hvs., hvb., hvr.)", before="A-Za-z0-9_."),
    Rule("terraform-cloud-token", "hashicorp",
         r"(?<![A-Za-z0-9])[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60,70}(?![A-Za-z0-9_=-])",
         (Anchor(b".atlasv1.", offsets=(14,)),), "Terraform Cloud / Enterprise API token (….atlasv1.…)",
         hs=(fixed(b"\\.atlasv1\\.[A-Za-z0-9_=-]{8}", b".atlasv1.", 8),), check=_CHECK),
    _t("cloudflare-origin-ca-key", "cloudflare", "v1.0-", r"[a-f0-9]{24}-[a-f0-9]{146}",
       "Cloudflare Origin CA key (v1.0-…)", before="A-Za-z0-9_."),
    _t("databricks-token", "databricks", "dapi", r"[a-f0-9]{32}(?:-[0-9])?", "Databricks API token (dapi…)",
       after="A-Za-z0-9_-"),
    _t("heroku-api-key", "heroku", "HRKU-AA", r"[A-Za-z0-9_-]{58}", "Heroku API key (HRKU-AA…)",
       after=TOKEN_CHARS),
    _t("doppler-token", "doppler", ("dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."),
       r"[A-Za-z0-9]{40,44}", "Doppler tokens (dp.pt., dp.st., dp.sa., dp.ct., dp.scim., dp.audit.)",
       before="A-Za-z0-9_."),
    _t("pulumi-access-token", "pulumi", "pul-", r"[a-f0-9]{40}", "Pulumi access token (pul-…)"),
    _t("flyio-token", "flyio", "fo1_", r"[A-Za-z0-9_-]{43}", "Fly.io token (fo1_…)", after=TOKEN_CHARS),
    _t("planetscale-token", "planetscale", ("pscale_tkn_", "pscale_pw_", "pscale_oauth_"),
       r"[A-Za-z0-9_=.-]{32,64}", "PlanetScale token or password (pscale_tkn_, pscale_pw_, pscale_oauth_)"),
    _t("supabase-token", "supabase", "sbp_", r"[a-f0-9]{40}", "Supabase access token (sbp_…)"),
    _t("alibaba-access-key-id", "alibaba", "LTAI", r"[A-Za-z0-9]{20}", "Alibaba Cloud AccessKey ID (LTAI…)",
       before="A-Za-z0-9"),
    _t("dynatrace-token", "dynatrace", "dt0c01.", r"[A-Z0-9]{24}\.[A-Z0-9]{64}", "Dynatrace API token",
       before="A-Za-z0-9_."),
    _t("newrelic-api-key", "newrelic", ("NRAK-", "NRII-", "NRJS-"), r"[A-Z0-9]{27}",
       "New Relic user, insert and browser keys"),
    _t("openshift-token", "openshift", "sha256~", r"[A-Za-z0-9_-]{43}", "OpenShift user token (sha256~…)",
       after=TOKEN_CHARS),
    _t("artifactory-token", "artifactory", ("AKCp", "cmVmdGtuOjAxOj"), r"[A-Za-z0-9]{50,100}",
       "JFrog Artifactory API key (AKCp…) and reference token", before="A-Za-z0-9"),
    # --- code hosting, packages, CI ---
    Rule("github-token", "github", r"(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{20,255}",
         tuple(Anchor(p) for p in (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_")),
         "GitHub tokens: ghp_, gho_, ghu_, ghs_, ghr_",
         hs=tuple(fixed(b"[^A-Za-z0-9_]" + p + b"[A-Za-z0-9]{20}", p, 20)
                  for p in (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"))),
    Rule("github-fine-grained-pat", "github", r"(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{20,255}",
         (Anchor(b"github_pat_"),), "GitHub fine-grained personal access token (github_pat_…)",
         hs=(fixed(b"[^A-Za-z0-9_]github_pat_[A-Za-z0-9_]{20}", b"github_pat_", 20),)),
    _t("gitlab-token", "gitlab",
       ("glpat-", "gldt-", "glptt-", "glrt-", "glcbt-", "glffct-", "glft-", "glimt-", "glagent-", "gloas-",
        "glsoat-"), r"[A-Za-z0-9_-]{20,300}(?:\.[0-9a-z]{9})?",
       "GitLab tokens: glpat- (personal), gldt- (deploy), glptt-, glrt-, glcbt-, glffct-, glft-, glimt-, glagent-, "
       "gloas-, glsoat-", after=TOKEN_CHARS + "."),
    _t("gitlab-runner-registration-token", "gitlab", "GR1348941", r"[A-Za-z0-9_-]{20}",
       "GitLab runner registration token (GR1348941…)", before="A-Za-z0-9", after=TOKEN_CHARS),
    Rule("gitlab-session-cookie", "gitlab", r"_gitlab_session=", (Anchor(b"_gitlab_session="),),
         "GitLab session cookie", secret=r"[0-9a-z]{32}(?![0-9a-z])", check=_CHECK),
    _t("npm-token", "npm", "npm_", r"[A-Za-z0-9]{36}", "npm access token (npm_…)"),
    _t("pypi-token", "pypi", ("pypi-AgEIcHlwaS5vcmc", "pypi-AgENdGVzdC5weXBpLm9yZw"), r"[A-Za-z0-9_-]{50,1000}",
       "PyPI and TestPyPI upload tokens (pypi-AgEIcHlwaS5vcmc…)", after=TOKEN_CHARS),
    _t("rubygems-token", "rubygems", "rubygems_", r"[a-f0-9]{48}", "RubyGems API key (rubygems_…)"),
    _t("clojars-token", "clojars", "CLOJARS_", r"[a-z0-9]{60}", "Clojars deploy token (CLOJARS_…)"),
    _t("dockerhub-token", "docker", "dckr_pat_", r"[A-Za-z0-9_-]{27}", "Docker Hub personal access token",
       after=TOKEN_CHARS),
    _t("sonarqube-token", "sonarqube", ("sqp_", "squ_", "sqa_"), r"[a-f0-9]{40}", "SonarQube tokens"),
    _t("postman-api-key", "postman", "PMAK-", r"[a-f0-9]{24}-[a-f0-9]{34}", "Postman API key (PMAK-…)"),
    _t("prefect-api-key", "prefect", "pnu_", r"[A-Za-z0-9]{36}", "Prefect API key (pnu_…)"),
    _t("readme-api-key", "readme", "rdme_", r"[a-z0-9]{70}", "ReadMe API key (rdme_…)"),
    _t("infracost-api-key", "infracost", "ico-", r"[A-Za-z0-9]{32}", "Infracost API key (ico-…)"),
    # --- payments and commerce ---
    _t("stripe-key", "stripe", ("sk_live_", "sk_test_", "sk_prod_", "rk_live_", "rk_test_", "rk_prod_"),
       r"[A-Za-z0-9]{10,247}", "Stripe secret and restricted keys (sk_live_, sk_test_, rk_live_, rk_test_, …_prod_)"),
    _t("stripe-webhook-secret", "stripe", "whsec_", r"[A-Za-z0-9+/=]{32,100}", "Stripe webhook signing secret"),
    _t("square-token", "square", ("sq0atp-", "sq0csp-", "EAAA"), r"[A-Za-z0-9_-]{22,60}",
       "Square access tokens and OAuth secrets (sq0atp-, sq0csp-, EAAA…)", before="A-Za-z0-9", after=TOKEN_CHARS),
    _t("shopify-token", "shopify", ("shpat_", "shpca_", "shppa_", "shpss_"), r"[a-fA-F0-9]{32}",
       "Shopify access, custom-app, private-app tokens and shared secrets"),
    _t("flutterwave-secret-key", "flutterwave", ("FLWSECK-", "FLWSECK_TEST-"), r"[a-f0-9]{32}-X",
       "Flutterwave secret key"),
    _t("shippo-token", "shippo", ("shippo_live_", "shippo_test_"), r"[a-f0-9]{40}", "Shippo API token"),
    _t("duffel-token", "duffel", ("duffel_test_", "duffel_live_"), r"[A-Za-z0-9_=-]{43}", "Duffel API token",
       after=TOKEN_CHARS + "="),
    # --- messaging, email, collaboration ---
    Rule("slack-token", "slack",
         r"(?<![A-Za-z0-9])(?:xoxe\.xox[abcdeoprs]|xox[abcdeoprs]|xapp)-(?=[A-Za-z0-9-]{0,100}[0-9])"
         r"[A-Za-z0-9-]{10,400}", (Anchor(b"xox"), Anchor(b"xapp-")),
         "Slack tokens: xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe-, xoxc-, xoxd-, xoxo-, xoxe.xox?-, xapp-",
         hs=(fixed(_NOT_ALNUM + b"xox[abcdeoprs]-", b"xox", 2),
             fixed(_NOT_ALNUM + b"xoxe\\.xox[abcdeoprs]-", b"xox", 7), fixed(_NOT_ALNUM + b"xapp-", b"xapp-", 0))),
    Rule("slack-webhook-url", "slack",
         r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{8,300}",
         (Anchor(b"hooks.slack.com", offsets=(0, 7, 8)),), "Slack incoming-webhook URL",
         hs=(fixed(b"hooks\\.slack\\.com/", b"hooks.slack.com", 1),)),
    Rule("discord-webhook-url", "discord",
         r"(?:https?://)?(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{17,20}/[A-Za-z0-9_-]{60,68}"
         r"(?![A-Za-z0-9_-])",
         tuple(Anchor(lit, offsets=(0, 4, 7, 8, 11, 12, 14, 15)) for lit in (b"discord.com/api/webhooks/",
                                                                             b"discordapp.com/api/webhooks/")),
         "Discord webhook URL", hs=(fixed(b"discord\\.com/api/webhooks/", b"discord.com/api/webhooks/", 0),
                                    fixed(b"discordapp\\.com/api/webhooks/", b"discordapp.com/api/webhooks/", 0))),
    Rule("telegram-bot-token", "telegram", r":", (Anchor(b":A"),),
         "Telegram bot token (<bot id>:A…): the part after the colon",
         secret=r"A[A-Za-z0-9_-]{34}(?![A-Za-z0-9_-])",
         hs=(fixed(b"[0-9]:A[A-Za-z0-9_-]{34}", b":A", 34),), check=_telegram),
    _t("sendgrid-api-key", "sendgrid", "SG.", r"(?:[A-Za-z0-9_=-]{16,32}\.[A-Za-z0-9_=-]{16,64}|[A-Za-z0-9_=.-]{66})",
       "SendGrid API key (SG.….…)", before="A-Za-z0-9_.", after="A-Za-z0-9_=.-", probe="[A-Za-z0-9_=-]{8}"),
    Rule("mailgun-api-key", "mailgun", r"(?<![A-Za-z0-9_-])(?:pub)?key-[a-f0-9]{32}(?![A-Za-z0-9_-])",
         (Anchor(b"key-", offsets=(0, 3)),), "Mailgun private (key-…) and public validation (pubkey-…) keys",
         hs=(fixed(b"key-[a-f0-9]{32}", b"key-", 32),), check=_CHECK),
    Rule("mailchimp-api-key", "mailchimp", r"(?<![A-Za-z0-9])[0-9a-f]{32}-us[0-9]{1,2}(?![A-Za-z0-9])",
         (Anchor(b"-us", offsets=(32,)),), "Mailchimp API key (…-us12)",
         hs=(fixed(b"[0-9a-f]{32}-us[0-9]", b"-us", 1),), check=_CHECK),
    _t("brevo-api-key", "brevo", ("xkeysib-", "xsmtpsib-"), r"[a-f0-9]{64}-[A-Za-z0-9]{16}",
       "Brevo (Sendinblue) API and SMTP keys"),
    _t("twilio-api-key", "twilio", "SK", r"[0-9a-fA-F]{32}", "Twilio API key SID with its secret context (SK…)",
       before="A-Za-z0-9"),
    _t("linear-api-key", "linear", ("lin_api_", "lin_oauth_"), r"[A-Za-z0-9]{40,64}", "Linear API and OAuth tokens"),
    _t("atlassian-api-token", "atlassian", ("ATATT3", "ATCTT3"), r"[A-Za-z0-9_=-]{150,250}",
       "Atlassian API tokens (ATATT3…, ATCTT3…)", before="A-Za-z0-9", after=TOKEN_CHARS + "="),
    _t("notion-token", "notion", ("ntn_", "secret_"), r"[A-Za-z0-9]{43,46}", "Notion integration tokens"),
    _t("figma-token", "figma", "figd_", r"[A-Za-z0-9_-]{40}", "Figma personal access token", after=TOKEN_CHARS),
    _t("airtable-token", "airtable", "pat", r"[A-Za-z0-9]{14}\.[a-f0-9]{64}", "Airtable personal access token",
       before="A-Za-z0-9", probe=r"[A-Za-z0-9]{14}\.[a-f0-9]{8}"),
    _t("hubspot-token", "hubspot", ("pat-na1-", "pat-eu1-"),
       r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "HubSpot private app token"),
    _t("contentful-token", "contentful", "CFPAT-", r"[A-Za-z0-9_-]{43}", "Contentful personal access token",
       after=TOKEN_CHARS),
    _t("typeform-token", "typeform", "tfp_", r"[A-Za-z0-9_.=-]{59}", "Typeform personal token",
       after=TOKEN_CHARS + ".="),
    # --- monitoring ---
    _t("grafana-token", "grafana", ("glc_", "glsa_"), r"[A-Za-z0-9+/_]{32,400}={0,3}",
       "Grafana Cloud API tokens (glc_…) and service account tokens (glsa_…)", after="A-Za-z0-9+/_="),
    _t("grafana-api-key", "grafana", "eyJrIjoi", r"[A-Za-z0-9]{70,400}={0,3}", "Grafana API key (eyJrIjoi…)",
       before="A-Za-z0-9_-", after="A-Za-z0-9="),
    _t("sentry-token", "sentry", ("sntrys_", "sntryu_"), r"[A-Za-z0-9_=+/-]{40,400}",
       "Sentry organization (sntrys_) and user (sntryu_) tokens", after="A-Za-z0-9_=+/-"),
    _t("age-secret-key", "age", "AGE-SECRET-KEY-1", r"[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}", "age secret key"),
    Rule("jwt", "jwt",
         r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,4096}={0,2}(?:\.[A-Za-z0-9_-]{0,16384}={0,2}){2,4}",
         (Anchor(b"eyJ"),), "JSON Web Token (JWS, or JWE with five parts)",
         hs=(fixed(b"[^A-Za-z0-9_-]eyJ[A-Za-z0-9_-]{8}", b"eyJ", 8),)),
)
