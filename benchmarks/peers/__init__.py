"""Test cases of peer secret scanners (gitleaks, detect-secrets, trufflehog), read at run time from local checkouts."""
