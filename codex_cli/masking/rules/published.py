"""Credentials published on purpose: example keys that ship in public SDKs and emulators.

They are in thousands of public repositories and grant nothing, so masking them only hides code a
user may need to read. A value is left alone only when the whole secret a rule found is one of
these, byte for byte; anything else in the same format is masked as usual.
"""

from __future__ import annotations

# Example Google API keys from firebase-android-sdk's tests and samples (gitleaks allows the same list in
# its gcp-api-key rule).
_FIREBASE_SDK_EXAMPLES = (
    b"AIzaSyabcdefghijklmnopqrstuvwxyz1234567", b"AIzaSyAnLA7NfeLquW1tJFpx_eQCxoX-oo6YyIs",
    b"AIzaSyCkEhVjf3pduRDt6d1yKOMitrUEke8agEM", b"AIzaSyDMAScliyLx7F0NPDEJi1QmyCgHIAODrlU",
    b"AIzaSyD3asb-2pEZVqMkmL6M9N6nHZRR_znhrh0", b"AIzayDNSXIbFmlXbIE6mCzDLQAqITYefhixbX4A",
    b"AIzaSyAdOS2zB6NCsk1pCdZ4-P6GBdi_UUPwX7c", b"AIzaSyASWm6HmTMdYWpgMnjRBjxcQ9CKctWmLd4",
    b"AIzaSyANUvH9H9BsUccjsu2pCmEkOPjjaXeDQgY", b"AIzaSyA5_iVawFQ8ABuTZNUdcwERLJv_a_p4wtM",
    b"AIzaSyA4UrcGxgwQFTfaI3no3t7Lt1sjmdnP5sQ", b"AIzaSyDSb51JiIcB6OJpwwMicseKRhhrOq1cS7g",
    b"AIzaSyBF2RrAIm4a0mO64EShQfqfd2AFnzAvvuU", b"AIzaSyBcE-OOIbhjyR83gm4r2MFCu4MJmprNXsw",
    b"AIzaSyB8qGxt4ec15vitgn44duC5ucxaOi4FmqE", b"AIzaSyA8vmApnrHNFE0bApF4hoZ11srVL_n0nvY",
)
# The account key of Azurite and the Azure Storage Emulator (devstoreaccount1), documented by Microsoft
# (trufflehog's azure_storage detector skips it too).
_AZURITE = (b"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",)

PUBLISHED: frozenset[bytes] = frozenset(_FIREBASE_SDK_EXAMPLES + _AZURITE)
LENGTHS: frozenset[int] = frozenset(len(v) for v in PUBLISHED)


def published(value: bytes) -> bool:
    """Whether ``value`` is one of the published example credentials."""
    return len(value) in LENGTHS and value in PUBLISHED
