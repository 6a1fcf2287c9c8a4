"""redact() removes each kind of secret and PII, and leaves look-alikes alone."""

from __future__ import annotations

import pytest

from evolver.redact import redact, sanitize_inline

PLANTED = {
    "openai-key": "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
    "openai-proj": "sk-proj-Abc123_def456-GHI789jkl012MNO345pqr",
    "anthropic-key": "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abc",
    "aws-key": "AKIAIOSFODNN7EXAMPLE",
    "github-ghp": "ghp_1234567890abcdefghijABCDEFGHIJ123456",
    "github-gho": "gho_1234567890abcdefghijABCDEFGHIJ123456",
    "github-ghs": "ghs_1234567890abcdefghijABCDEFGHIJ123456",
    "github-pat": "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
    "slack-token": "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "google-key": "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
    "email": "jane.doe+tag@mail.example.co.uk",
    "card-visa": "4111 1111 1111 1111",
    "card-dashes": "5500-0000-0000-0004",
    "card-plain": "378282246310005",
    "phone-us": "(415) 555-2671",
    "phone-us-dashes": "415-555-2671",
    "phone-intl": "+44 20 7946 0958",
    "phone-intl-compact": "+14155552671",
    # Formats added for issue 14: each got through before.
    "gitlab-token": "glpat-AbCdEfGh1234567890xYzW",
    "gitlab-deploy": "gldt-AbCdEfGh1234567890xYzW_-",
    "huggingface-token": "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    "stripe-live": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "stripe-restricted": "rk_test_51HqLyjWDarjtT1zdp7dcAbC",
    "ssn": "536-22-1847",
    "iban": "DE89370400440532013000",
    "iban-spaced": "GB82 WEST 1234 5698 7654 32",
    "aws-secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_each_kind_is_redacted(kind: str) -> None:
    secret = PLANTED[kind]
    out = redact(f"before {secret} after")
    assert secret not in out
    assert "[REDACTED:" in out
    assert out.startswith("before ") and out.endswith(" after")


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Authorization: Bearer abc.DEF-123_456~xyz", "abc.DEF-123_456~xyz", "Bearer"),
        ("postgres://admin:hunter2@db.example.com:5432/app", "hunter2", "db.example.com"),
        ("https://bob:s3cr3t@example.org/path", "s3cr3t", "https://"),
        ("password=correcthorse", "correcthorse", "password="),
        ('{"api_key": "zz-not-a-known-format-123"}', "zz-not-a-known-format-123", '"api_key"'),
        ("db_password: 'tr0ub4dor&3'", "tr0ub4dor&3", "db_password"),
        ("secret=abcdef123 and more", "abcdef123", "and more"),
        ("access_token=qwertyuiop", "qwertyuiop", "access_token"),
        ("client_secret = 'pa ss'", "pa ss", "client_secret"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "Basic"),
        ("curl -H 'authorization: basic c3ZjOmh1bnRlcjI='", "c3ZjOmh1bnRlcjI=", "basic"),
        ("sent Basic YWRtaW46c2VjcmV0 upstream", "YWRtaW46c2VjcmV0", "upstream"),  # admin:secret
        ("SSN: 536221847", "536221847", "SSN"),
        ("social security number 536 22 1847", "536 22 1847", "social security"),
        ("tool get_ghp_1234567890abcdefghijABCDEFGHIJ123456_v2", "1234567890abcdef", "get_"),
        ("skill visa-536-22-1847", "536-22-1847", "visa-"),
        ("GET /keys/wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY/3", "bPxRfiCYEXAMPLEKEY", "/keys/"),
        ("run wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY/3", "bPxRfiCYEXAMPLEKEY", "/3"),
        ("iban GB82 WEST 1234 5698 7654 32 AND MORE", "5698", "AND MORE"),
    ],
)
def test_structured_secrets(text: str, secret: str, kept: str) -> None:
    out = redact(text)
    assert secret not in out
    assert kept in out


def test_pem_block_is_removed_whole() -> None:
    pem = (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1234\nabcdEFGH==\n"
        "-----END RSA PRIVATE KEY-----"
    )
    out = redact(f"key:\n{pem}\nthanks")
    assert "MIIEow" not in out and "abcdEFGH" not in out
    assert out == "key:\n[REDACTED:private-key]\nthanks"


@pytest.mark.parametrize(
    "text",
    [
        "Flight HAT136 departs 2024-05-20 at 11:00",
        "It costs $1,234.56 or 1234.56 EUR",
        "reservation 4WQ150 and order #W2378156",
        "order 1234567890123 (13 digits, fails Luhn)",
        "user id 5551234567 is a bare digit run",
        "the token is invalid, please retry",
        "max_tokens: 512 and token_count=40",
        "use sk-learn for this",
        "call me at extension 1234",
        "the year range 1990-2024",
        "email me at support (at) example",
        "user_id mia_li_3668 and payment credit_card_4421486",
        # What the product shows and needs: commit and content shas, run and cluster ids.
        "commit 3f786850e387550fdab836ed7e6dc881de23001b on main",
        "blob 3F786850E387550FDAB836ED7E6DC881DE23001B",
        "id sha256:0123456789abcdef0123456789abcdef and run-9f86d081884c7d659a2feaa0c55ad015",
        "uuid 5c1e7f2a-8b3d-4e6f-9a1b-2c3d4e5f6a7b",
        "otel:4bf92f3577b34da6a3ce929d0e0e4736:a1b2c3d4e5f60718",
        "a basic information request, Basic auth is off, basic SomeWord",
        "not SSNs: 000-12-3456, 666-12-3456, 912-34-5678, 123-00-4567, 123-45-0000",
        "order 123-45-6789-0 and range 12-345-67-8901",
        "not an IBAN: DE00370400440532013000 (bad check digits)",
        "sku AB12CDEFGHIJKLMN and flight HAT136",
        "the task-abcdefghijklmnopqrstuvwxyz01 and risk-assessment-of-the-new-feature-x",
        "path src/main/java/com/example/service/impl/Main.java",
        "hf_hub and sk_live and glpat- alone",
        "ThisSentenceHasFortyLettersButNoDigitsXY!",
    ],
)
def test_near_misses_survive(text: str) -> None:
    assert redact(text) == text


def test_redact_is_idempotent() -> None:
    text = " ".join(PLANTED.values()) + " password=abc token: [REDACTED:jwt]"
    once = redact(text)
    assert redact(once) == once


def test_sanitize_inline_neutralises_markdown() -> None:
    out = sanitize_inline("# Title\n<script>alert(1)</script> `code` | table\n\n[x](http://e)")
    assert "\n" not in out and "<" not in out and ">" not in out and "`" not in out
    assert "|" not in out and not out.startswith("#") and "](" not in out
    assert "script" in out  # the words survive, only the markup goes


def test_sanitize_inline_truncates_and_redacts() -> None:
    out = sanitize_inline("contact jane@example.com " + "word " * 100, limit=40)
    assert len(out) == 40 and out.endswith("…")
    assert "jane@example.com" not in out
    assert "<!-- skillforge:end -->" not in sanitize_inline("x <!-- skillforge:end --> y")


def test_a_long_error_line_is_cut_before_redaction_without_leaving_half_a_secret():
    from evolver.graph import FIRST_LINE_LIMIT, normalise_error

    key = "sk-ant-api03-" + "Q" * 60
    padding = "x" * (FIRST_LINE_LIMIT - 20)
    # The key straddles the cut: its first part alone is too short to be recognised.
    text = f"error: {padding} {key} and more\nsecond line"
    out = normalise_error(text)
    assert "sk-ant" not in out and "QQQ" not in out and "second" not in out
    assert normalise_error("error: " + "y" * 5000) == "error without a message"
    assert normalise_error(f"error: token {key}") == "token ⟨secret⟩"  # redacted, then a kind
