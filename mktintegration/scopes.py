"""API token scopes. A token may do what its scopes AND its user's permissions allow."""

SCOPES: dict[str, str] = {
    "export:clients": "Read the clients dataset",
    "export:metrics": "Read the metrics dataset",
    "export:contacts": "Read the contacts dataset (personal data)",
    "integrations:read": "Read integration status, runs and configuration",
    "integrations:configure": "Create and change connections, syncs and schedules",
    "integrations:run": "Start sync and export runs",
    "events:write": "Announce changed companies and contacts to real-time syncs",
}


def scope_validate(scopes: list[str]) -> list[str]:
    """The scopes, de-duplicated and sorted; ValueError naming any unknown one."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(
            f"unknown scope(s): {', '.join(unknown)}; known scopes: {', '.join(sorted(SCOPES))}"
        )
    return sorted(set(scopes))
