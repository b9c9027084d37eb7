"""Who may see what: identity, tenant isolation, compliance scopes."""
