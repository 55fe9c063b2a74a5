"""Every rule masks its real-world formats (sloppy ones included) and leaves look-alikes alone."""

from __future__ import annotations

import random
import string

import pytest
from regex_sample import sample

from codex_cli.masking import RULES, StreamMasker, mask_bytes, mask_text, secret_filter_disabled
from codex_cli.masking.rules import providers

S = "[SECRET]"
_rng = random.Random(1234)
ALNUM = string.ascii_letters + string.digits


def rand(chars: str, k: int) -> str:
    return "".join(_rng.choices(chars, k=k))


PEM_BODY = "\n".join(rand(ALNUM + "+/", 64) for _ in range(6)) + "\n" + rand(ALNUM, 20) + "=="
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
# (rule id, text, expected masked text)
POSITIVES = [
    ("openai-api-key", f"key sk-{rand(ALNUM, 20)}T3BlbkFJ{rand(ALNUM, 20)} end", f"key {S} end"),
    ("openai-api-key", f"OPENAI_API_KEY=sk-proj-{rand(ALNUM + '_-', 74)}T3BlbkFJ{rand(ALNUM + '_-', 74)}",
     f"OPENAI_API_KEY={S}"),
    ("openai-api-key", f'"sk-svcacct-{rand(ALNUM, 58)}T3BlbkFJ{rand(ALNUM, 58)}"', f'"{S}"'),
    ("openai-api-key", f"sk-admin-{rand(ALNUM, 58)}T3BlbkFJ{rand(ALNUM, 58)}\n", f"{S}\n"),
    ("openai-api-key", "legacy sk-Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9jKl1nOp3rSt5v", f"legacy {S}"),
    ("aws-access-key-id", "aws key AKIA1234567890EXAMPLE", f"aws key {S}"),
    ("aws-access-key-id", "id=AKIAIOSFODNN7EXAMPLE;", f"id={S};"),
    ("aws-access-key-id", "ASIAY34FZKBOKMUTVV7A ABIAZZ2345ABCDEFGHIJ ACCA7ABCDEFGHIJKLMNO",
     f"{S} {S} {S}"),
    ("aws-access-key-id", "A3TX1234567890ABCDEF", S),
    ("aws-secret-access-key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     f"aws_secret_access_key = {S}"),
    ("aws-secret-access-key", 'export AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
     f'export AWS_SECRET_ACCESS_KEY="{S}"'),
    ("aws-secret-access-key", '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
     f'{{"SecretAccessKey": "{S}"}}'),
    ("aws-secret-access-key", "aws_secret_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCY", f"aws_secret_key: {S}"),
    ("google-api-key", f"https://maps.googleapis.com/x?key=AIzaSy{rand(ALNUM + '_-', 33)}&q=1",
     f"https://maps.googleapis.com/x?key={S}&q=1"),
    ("gcp-service-account-key",
     '  "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n'
     '-----END PRIVATE KEY-----\\n",',
     f'  "private_key": "{S}",'),
    ("github-token", f"token ghp_{rand(ALNUM, 36)}", f"token {S}"),
    ("github-token", f"gho_{rand(ALNUM, 36)} ghu_{rand(ALNUM, 36)} ghs_{rand(ALNUM, 36)} ghr_{rand(ALNUM, 36)}",
     f"{S} {S} {S} {S}"),
    ("github-fine-grained-pat", f"GH_TOKEN=github_pat_{rand(ALNUM, 22)}_{rand(ALNUM, 59)}", f"GH_TOKEN={S}"),
    ("slack-token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", S),
    ("slack-token", "xoxp-1234567890-1234567890-1234567890-abcdef0123 xoxa-2-1234567890-abc", f"{S} {S}"),
    ("slack-token", "xoxr-1234567890-abcdef xoxs-1234567890-abcdef xoxe-1-My0xLTEyMzQ1Ng", f"{S} {S} {S}"),
    ("slack-token", "cookie d=xoxd-AbC123dEf456%2F xoxc-1234567890-1234567890-abcdef", f"cookie d={S}%2F {S}"),
    ("slack-token", "xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAtMTIz xapp-1-A0123456789-1234567890123-abcdef0123",
     f"{S} {S}"),
    ("slack-webhook-url", "POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n",
     f"POST {S}\n"),
    ("private-key", f"before\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\nafter\n",
     f"before\n{S}\nafter\n"),
    ("private-key", f"-----BEGIN OPENSSH PRIVATE KEY-----\r\n{PEM_BODY}\r\n-----END OPENSSH PRIVATE KEY-----",
     S),
    ("private-key", "k = '-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqG"
                    "\\n-----END EC PRIVATE KEY-----'", f"k = '{S}'"),
    ("private-key", f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{PEM_BODY}\n-----END PGP PRIVATE KEY BLOCK-----",
     S),
    ("private-key-unterminated", f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{PEM_BODY}\nThe end.",
     f"{S}\nThe end."),
    ("private-key", f"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"rsa-key\"\n{PEM_BODY}\n"
                    "---- END SSH2 ENCRYPTED PRIVATE KEY ----\n", f"{S}\n"),
    ("putty-private-key", f"PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nPublic-Lines: 2\n{PEM_BODY}\n"
                          f"Private-Lines: 2\n{PEM_BODY}\nPrivate-MAC: {'0a1b2c3d' * 5}\n", f"{S}\n"),
    ("jwt", f"Authorization: Bearer {JWT}\n", f"Authorization: Bearer {S}\n"),
    ("jwt", "t=eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0In0.", f"t={S}"),
]
NEGATIVES = [
    ("openai-api-key", "task-list-item-checkbox-container sk-learn risk-free sk-SK desk-1234567890ABCDEFGHIJ"),
    ("openai-api-key", "sk-lowercase-kebab-case-identifier-name sketch"),
    ("aws-access-key-id", "ASIAN markets, TASK-42, AKIAB, ASIAPACIFICREGION"),
    ("aws-access-key-id", "DNA ACCAGTACGATCGATCGTACGTTAGC ACCACCACCACCACCACCAC"),
    ("aws-secret-access-key", "aws_secret_access_key = ${AWS_SECRET} # AWS_SECRET_ACCESS_KEY=changeme"),
    ("aws-secret-access-key", 'key = os.environ["AWS_SECRET_ACCESS_KEY"]; the secret access key is rotated'),
    ("google-api-key", "AIza AIzaShort"),
    ("gcp-service-account-key",
     '"private_key_id": "0123456789abcdef0123456789abcdef01234567", data["private_key"] = f()'),
    ("github-token", "ghost_protocol gh_pages ghp_short sketch_ghp"),
    ("github-fine-grained-pat", "github_pat_short, set_github_pat_value, github_pat_"),
    ("private-key-unterminated", "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA+xGZ/wcz9ugFpP07Nspo6U17l0YhFiFpxxU4\n"),
    ("private-key", "---- BEGIN SSH2 PUBLIC KEY ----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n---- END SSH2 PUBLIC KEY ----"),
    ("putty-private-key", "PuTTY-User-Key-File-2: ssh-rsa\nPublic-Lines: 1\nAAAAB3NzaC1yc2EAAAADAQAB\n"),
    ("slack-token", "xoxo-gossip xoxb-not-a-token-at-all xox"),
    ("slack-webhook-url", "see https://hooks.slack.com/ for docs"),
    ("private-key",
     "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----"),
    ("private-key", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9 and eyJ alone, eyJhbGciOiJIUzI1NiJ9.only-two"),
]

# Provider tokens: one sampled from each prefix rule's own pattern, in an assignment whose name says
# nothing; glued to a word, cut short, or a placeholder, the same prefix is left alone.
_PREFIX_RULES = [r for r in providers.RULES if r.hs and all(p.regex.startswith(b"[^") for p in r.hs)
                 and r.id not in ("google-api-key",)]
_TOKENS = {r.id: sample(r.regex, random.Random(r.id)) for r in _PREFIX_RULES}
POSITIVES += [(rid, f"export SOME_VALUE={tok}\n", f"export SOME_VALUE={S}\n") for rid, tok in _TOKENS.items()]
POSITIVES += [(rid, f'cfg = {{"x": "{tok}"}}', f'cfg = {{"x": "{S}"}}') for rid, tok in _TOKENS.items()]
NEGATIVES += [(rid, f"some_value=x{tok}") for rid, tok in _TOKENS.items()]
NEGATIVES += [(rid, f"some_value={tok[:len(tok) // 2]}") for rid, tok in _TOKENS.items()
              if rid not in ("stripe-key", "grafana-token", "pinecone-api-key")]
NEGATIVES += [(rid, f"see {prefix}{'x' * 90}")
              for rid, prefix in [("huggingface-token", "hf_"), ("gitlab-token", "glpat-"), ("grafana-token", "glc_"),
                                  ("stripe-key", "sk_live_"), ("npm-token", "npm_")]]

HF = "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"
ANT = "sk-ant-api03-" + rand(ALNUM + "_-", 93) + "AA"
POSITIVES += [
    ("anthropic-api-key", f"ANTHROPIC_API_KEY={ANT}", f"ANTHROPIC_API_KEY={S}"),
    ("anthropic-api-key", "sk-ant-admin01-" + rand(ALNUM, 93) + "AA", S),
    ("huggingface-token", f"huggingface-cli login --token {HF}", f"huggingface-cli login --token {S}"),
    ("huggingface-token", f"DEV=1 HF_TOKEN={HF} poetry run python app.py",
     f"DEV=1 HF_TOKEN={S} poetry run python app.py"),
    ("azure-storage-account-key", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
     + rand(ALNUM + "+/", 86) + "==;EndpointSuffix=core.windows.net",
     f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={S};EndpointSuffix=core.windows.net"),
    ("azure-sas-signature", "https://a.blob.core.windows.net/c?sv=2022-11-02&se=2030&sp=r&sig=" + rand(ALNUM, 40)
     + "%2B" + rand(ALNUM, 3) + "%3D", "https://a.blob.core.windows.net/c?sv=2022-11-02&se=2030&sp=r&sig=" + S),
    ("azure-ad-client-secret", "client_secret=bP88Q~rcBcYjzzOhg1Hnn76Wm3jGgakZiZ.8vMgR", f"client_secret={S}"),
    ("aws-secret-access-key", "AWS_SECRET_ACCESS_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'",
     f"AWS_SECRET_ACCESS_KEY = '{S}'"),
    ("terraform-cloud-token", f"token = {rand(ALNUM, 14)}.atlasv1.{rand(ALNUM, 67)}", f"token = {S}"),
    ("gitlab-session-cookie", f"Cookie: _gitlab_session={rand('abcdef0123456789', 32)}; x=1",
     f"Cookie: _gitlab_session={S}; x=1"),
    ("slack-token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", S),
    ("discord-webhook-url", f"https://discord.com/api/webhooks/123456789012345678/{rand(ALNUM + '_-', 68)}\n",
     f"{S}\n"),
    ("telegram-bot-token", "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw4/sendMessage",
     f"https://api.telegram.org/bot123456789:{S}/sendMessage"),
    ("telegram-bot-token", "TELEGRAM_BOT=5432109876:AAEbAbc-def_ghiJKLmno1234567890pqrs",
     f"TELEGRAM_BOT=5432109876:{S}"),
    ("mailgun-api-key", f"MAILGUN_KEY=key-{rand('abcdef0123456789', 32)}", f"MAILGUN_KEY={S}"),
    ("mailchimp-api-key", f"mc = '{rand('abcdef0123456789', 32)}-us21'", f"mc = '{S}'"),
    ("http-authorization", "curl -H 'Authorization: Basic YnJvd3Nlcjo=' https://x",
     f"curl -H 'Authorization: Basic {S}' https://x"),
    ("http-authorization", 'headers = {"Authorization": "Bearer cfcabd11c7ed9a41b1a3e063c32d5114"}',
     f'headers = {{"Authorization": "Bearer {S}"}}'),
    ("http-authorization", "Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b\n",
     f"Authorization: Token {S}\n"),
    ("bearer-token", "requests.get(url, headers=hdrs('Bearer a7Fq2LmZ9xKp4RtYb8Wc'))",
     f"requests.get(url, headers=hdrs('Bearer {S}'))"),
    ("uri-password", "DATABASE_URL=postgres://app:s3cr3t-Pw@db:5432/app", f"DATABASE_URL=postgres://app:{S}@db:5432/app"),
    ("uri-password", "mongodb+srv://admin:Tr0ub4dor&3@cluster0.x.mongodb.net/db?retryWrites=true",
     f"mongodb+srv://admin:{S}@cluster0.x.mongodb.net/db?retryWrites=true"),
    ("uri-password", "REDIS_URL=rediss://:hJ7s9Kq2@cache:6380/0", f"REDIS_URL=rediss://:{S}@cache:6380/0"),
    ("uri-password", "amqps://guest:w8Pz!q3Lr@mq:5671/vhost", f"amqps://guest:{S}@mq:5671/vhost"),
    ("uri-password", "git clone https://deploy:Fq9zK2mW7pLx@git.example.com/org/repo.git",
     f"git clone https://deploy:{S}@git.example.com/org/repo.git"),
    ("curl-user-password", "curl --cacert ca.crt -u elastic:P@ssw0rd$1 https://localhost:9200",
     f"curl --cacert ca.crt -u elastic:{S} https://localhost:9200"),
    ("curl-user-password", "curl --user 'johns:h0pk1ns~21s' $URL", f"curl --user 'johns:{S}' $URL"),
    ("cloudflare-api-key", 'cloudflare_global_api_key = "d3d1443e0adc9c24564c6c5676d679d47e2ca"',
     f'cloudflare_global_api_key = "{S}"'),
    ("cloudflare-api-key", "CLOUDFLARE: Bu0rrK-lerk6y0Suqo1qSqlDDajOk61wZchCkje4", f"CLOUDFLARE: {S}"),
    ("discord-token", f"discord_bot: {rand(ALNUM, 32)}", f"discord_bot: {S}"),
    ("heroku-api-key-named", 'const HEROKU_KEY = "12345678-ABCD-ABCD-ABCD-1234567890AB"', f'const HEROKU_KEY = "{S}"'),
    ("mailgun-signing-key", f"mailgun = {rand('abcdef0123456789', 32)}-00001111-22223333", f"mailgun = {S}"),
    ("atlassian-api-token-named", "atlassian: HXe8DGg1iJd2AopzyxkFB7F2", f"atlassian: {S}"),
    ("linear-client-secret", f"LINEAR = '{rand('abcdef0123456789', 32)}'", f"LINEAR = '{S}'"),
    ("twilio-auth-token", f"twilio: {rand('abcdef0123456789', 32)}", f"twilio: {S}"),
    ("datadog-key", f"datadog: {rand('abcdef0123456789', 40)}", f"datadog: {S}"),
    ("okta-token", f"okta: 00{rand(ALNUM, 40)}", f"okta: {S}"),
    ("algolia-key", f"algolia: {rand('abcdef0123456789', 32)}", f"algolia: {S}"),
    ("wandb-api-key", f"wandb: {rand('abcdef0123456789', 40)}", f"wandb: {S}"),
    ("aws-named-secret-key", "AWS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCY9XAMPLE1EY", f"AWS_KEY={S}"),
    ("credential-assignment", "DB_PASSWORD=s3cr3tP4ss", f"DB_PASSWORD={S}"),
    ("credential-assignment", "mysql -u admin --password=Sup3rS3cret app", f"mysql -u admin --password={S} app"),
    ("credential-assignment", "client_secret: aB3dE5gH7jK9", f"client_secret: {S}"),
    ("credential-assignment", 'curl -H "X-Api-Key: 9f8e7d6c5b4a39281706" https://x', f'curl -H "X-Api-Key: {S}" https://x'),
]
NEGATIVES += [
    ("anthropic-api-key", "sk-ant-api03- and sk-ant-admin01-short"),
    ("azure-storage-account-key", "AccountKey=<your-key>; AccountKey=" + "x" * 88),
    ("azure-sas-signature", "https://example.com/?sig=short&design=ok"),
    ("azure-ad-client-secret", "client_secret=bP88Q~xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ("gitlab-session-cookie", "_gitlab_session=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
    ("terraform-cloud-token", "see app.terraform.io/app/settings/tokens"),
    ("discord-webhook-url", "https://discord.com/api/webhooks/ is documented"),
    ("telegram-bot-token", "ratio 1234:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghi and time 12:30:AM"),
    ("mailgun-api-key", "the key-value store, monkey-patch"),
    ("mailchimp-api-key", "region-us1 and " + "0" * 32 + "-us1"),
    ("http-authorization", "Authorization: Bearer $TOKEN\\nAuthorization: Basic dXNlcm5hbWU= and "
                           "Authorization: <token>"),
    ("bearer-token", "use a Bearer token in the Authorization header"),
    ("uri-password", "https://example.com:8443/path@v2 and postgres://user:password@localhost/db and "
                     "redis://:${REDIS_PASSWORD}@cache:6379"),
    ("curl-user-password", "curl -u \"$USER:$PASS\" https://x; git push -u origin main; curl --user username:password"),
    ("cloudflare-api-key", "cloudflare_zone_id = 023e105f4ecef8ad9ca31a8372d0c353"),
    ("discord-token", "discord_client_id = 123456789012345678"),
    ("heroku-api-key-named", "HEROKU_APP_NAME = 12345678-ABCD-ABCD-ABCD-1234567890AB"),
    ("mailgun-signing-key", "mailgun_domain = mg.example.com"),
    ("atlassian-api-token-named", "jira_url = https://example.atlassian.net"),
    ("linear-client-secret", "linear_warmup_steps: 100 and scheduler: linear"),
    ("twilio-auth-token", "twilio_account_sid_length = 34"),
    ("datadog-key", "datadog_site: datadoghq.eu"),
    ("okta-token", "okta_domain: dev-123456.okta.com"),
    ("algolia-key", "algolia_app_id: ABCDEFGHIJ"),
    ("wandb-api-key", "wandb_project: codex-runs"),
    ("aws-named-secret-key", "aws_region = us-east-1; AWS_KEY_ID_LENGTH = 20"),
    ("credential-assignment", "password_length = 16; max_tokens: 128; token_count = 1234; secret_santa = true"),
]
NAME_KEYED = [  # (text, expected): the credential-assignment rule across formats
    ("DB_PASSWORD=hunter22\n", f"DB_PASSWORD={S}\n"),
    ("export VAULT_PASS='p4ss word'\n", f"export VAULT_PASS='{S}'\n"),
    ('password: "correct horse battery staple"\n', f'password: "{S}"\n'),
    ("  db_password: s3cr3t!\n", f"  db_password: {S}\n"),
    ('{"password": "hunter22", "user": "bob"}', f'{{"password": "{S}", "user": "bob"}}'),
    ('"{\\"api_key\\": \\"9f8e7d6c5b4a\\"}"', f'"{{\\"api_key\\": \\"{S}\\"}}"'),
    ("[db]\npassword = Tr0ub4dor&3\n", f"[db]\npassword = {S}\n"),
    ('secret_key = "dj4ngo-s3cret-k3y"\n', f'secret_key = "{S}"\n'),
    ("api_key = 'abc123def456'", f"api_key = '{S}'"),
    ('const apiKey = "abc123def456";', f'const apiKey = "{S}";'),
    ('apiKey := "abc123def456"', f'apiKey := "{S}"'),
    ('private static final String API_TOKEN = "abc123def456";', f'private static final String API_TOKEN = "{S}";'),
    ("$password = 'hunter22';", f"$password = '{S}';"),
    ("'password' => 'hunter22',", f"'password' => '{S}',"),
    ("login(user='bob', password='hunter22')", f"login(user='bob', password='{S}')"),
    ("<password>s3cr3t9</password>", f"<password>{S}</password>"),
    ("--password=hunter22 --token abc123def456", f"--password={S} --token {S}"),
    ("mysql -u admin --password=Sup3rS3cret app", f"mysql -u admin --password={S} app"),
    ("Server=db;Database=app;User Id=sa;Password=Sup3r$ecret;", f"Server=db;Database=app;User Id=sa;Password={S};"),
    ("jdbc:mysql://db/app?user=app&password=s3cr3tPw&ssl=true", f"jdbc:mysql://db/app?user=app&password={S}&ssl=true"),
    ('System.setProperty("DB_PASSWORD", "s3cr3tPw")', f'System.setProperty("DB_PASSWORD", "{S}")'),
    ("if (password == \"s3cr3tPw\") {", f"if (password == \"{S}\") {{"),
    ("client_secret: aB3dE5gH7jK9", f"client_secret: {S}"),
    ("STRIPE_KEY=Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB", f"STRIPE_KEY={S}"),
    ("auth_token: 7d1f0c9e8b2a4f6e", f"auth_token: {S}"),
    ("role_id: public\nsecret_id: 3c8e0f5a-1b2c-4d5e-8f9a-0b1c2d3e4f5a", f"role_id: public\nsecret_id: {S}"),
    ("HF_TOKEN=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", f"HF_TOKEN={S}"),
]
NOT_SECRETS = [  # values and names the name-keyed rule leaves alone
    "password =", "password = ''", 'api_key = ""', "password = None", "password: null", "token: ~", "secret = nil",
    "verify_token = True", "password: ${DB_PASSWORD}", "password: $DB_PASSWORD", "password: '{{ vault_db_password }}'",
    "password = os.environ['DB_PASSWORD']", "token = os.getenv('TOKEN')", "apiKey: process.env.API_KEY",
    "password: <your-password>", "api_key = 'YOUR_API_KEY'", "token = 'xxxxxxxxxxxxxxxx'", "secret = '****'",
    "password = '********'", "api_key: 'ADD_YOUR_HUGGING_FACE_TOKEN_HERE'", "password = get_password()",
    "token = self.token", "password = user_password", "secret: Optional[str] = None", "password: string;",
    "password_length = 16", "max_tokens: 128", "token_count = 1234", "secret_santa = true", "min_password_len: 8",
    "pad_token = '<|pad|>'", "eos_token: '</s>'", "public_key = '9Cnzj4p4WGeKLs1Pt8QuKUpRKfFLfRYC9AIKjbJTWit'",
    "csrf_token = 'Mj2qykJO5rELyHgezQ69nzUX0i3OH67V7'", "cache_key = 'user:42:profile'", "primaryKey = 'id'",
    "sort_key: created_at", "api_key_id: AKID-public", "token_url: https://auth.example.com/token",
    "key_file = ./certs/server.key", "private_key: /etc/ssl/private/server.key", "keystore_password_file: /run/pw",
    '"password": "Password"', '"forgot_password": "Forgot password?"', '"password_hint": "At least 8 characters"',
    "Enter your password: ", "the token is valid and secret keys are rotated", "key: value", "keys: [a, b]",
    "password = password", "token: token", "secret: '[SECRET]'", "--password $PASS", "--token \"$TOKEN\"",
    "sha256: 3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed",
    "integrity: sha512-9mKZbq2NMVm2YGB5R9cYqjHo6w3Ju2PUdnZ8lSu4jRxbHyh5vV2Xa0FPeWH4mPpMmVKvTzz4Zr3MA0CWdhqLdA==",
    "UserSecretsId = 79a3edd0-2092-40a2-a04d-dcb46d5ca9ed", "tokenizer = AutoTokenizer.from_pretrained(path)",
]

ORDINARY = [
    "sha256: " + "".join(random.Random(1).choices("0123456789abcdef", k=64)),
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "id = 550e8400-e29b-41d4-a716-446655440000",
    "def sketch_task(ghost_id): return ask(desk=ghost_id)",
    "\n".join(random.Random(2).choices([rand(ALNUM + "+/", 64) for _ in range(50)], k=40)),  # base64 of a cert
    "Ünïcödé tëxt, emoji 🙂, CJK 秘密 and tabs\tand\r\nCRLF",
]


@pytest.mark.parametrize(("rule", "text", "expected"), POSITIVES,
                         ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(POSITIVES)])
def test_rule_masks_its_formats(rule: str, text: str, expected: str) -> None:
    masked, count = mask_text(text)
    assert masked == expected
    assert count == expected.count(S)


@pytest.mark.parametrize(("rule", "text"), NEGATIVES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(NEGATIVES)])
def test_rule_leaves_look_alikes_alone(rule: str, text: str) -> None:
    assert mask_text(text) == (text, 0)


@pytest.mark.parametrize("text", ORDINARY, ids=["sha256", "sha1", "uuid", "code-words", "base64", "unicode"])
def test_ordinary_text_is_untouched(text: str) -> None:
    assert mask_text(text) == (text, 0)


@pytest.mark.parametrize(("text", "expected"), NAME_KEYED, ids=[t[:32] for t, _ in NAME_KEYED])
def test_name_keyed_values_are_masked_and_only_the_value(text: str, expected: str) -> None:
    assert mask_text(text)[0] == expected


@pytest.mark.parametrize("text", NOT_SECRETS, ids=[t[:40] for t in NOT_SECRETS])
def test_names_and_values_that_are_not_credentials_stay(text: str) -> None:
    assert mask_text(text) == (text, 0)


def test_masking_twice_changes_nothing_more() -> None:
    text = "\n".join(t for _, t, _ in POSITIVES) + "\n" + "\n".join(t for t, _ in NAME_KEYED)
    once = mask_text(text)[0]
    assert mask_text(once) == (once, 0)


def test_every_rule_has_positive_and_negative_examples() -> None:
    ids = {r.id for r in RULES}
    assert {r for r, _, _ in POSITIVES} == ids
    assert {r for r, _ in NEGATIVES} == ids


def test_worked_example_exact() -> None:
    assert mask_text("aws key AKIA1234567890EXAMPLE\n") == ("aws key [SECRET]\n", 1)


@pytest.mark.parametrize(("replacement", "typed", "expected"), [
    ("[SECRET]", True, "x [SECRET:github] y"),
    ("***", False, "x *** y"),
    ("<redacted>", True, "x <redacted>:github y"),
    ("", False, "x  y"),
], ids=["typed", "custom", "custom-typed", "empty"])
def test_replacement_and_typed(replacement: str, typed: bool, expected: str) -> None:
    assert mask_text(f"x ghp_{'a1B2' * 9} y", replacement, typed) == (expected, 1)


def test_typed_names_each_family() -> None:
    text = "AKIAIOSFODNN7EXAMPLE " + JWT + " xoxb-1234567890-abcdefghij"
    assert mask_text(text, typed=True)[0] == "[SECRET:aws] [SECRET:jwt] [SECRET:slack]"


def test_allow_marker_leaves_only_its_line_alone() -> None:
    text = "a = 'AKIAIOSFODNN7EXAMPLE'  # codex: allow\nb = 'AKIAIOSFODNN7EXAMPLE'\n"
    assert mask_text(text) == (text.replace("b = 'AKIAIOSFODNN7EXAMPLE'", f"b = '{S}'"), 1)


def test_secret_filter_disabled_turns_everything_off(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "aws key AKIA1234567890EXAMPLE"
    assert not secret_filter_disabled()
    monkeypatch.setenv("DISABLE_SECRET_FILTER", "0")
    assert not secret_filter_disabled() and mask_text(text)[1] == 1
    monkeypatch.setenv("DISABLE_SECRET_FILTER", "1")
    assert secret_filter_disabled()
    assert mask_text(text) == (text, 0)
    assert mask_bytes(text.encode()) == (text.encode(), 0)
    stream = StreamMasker()
    assert stream.feed(text) + stream.flush() == text and stream.count == 0
